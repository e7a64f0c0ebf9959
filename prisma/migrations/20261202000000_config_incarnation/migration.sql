-- A config's incarnation changes when it is created (again) and when what it trusts changes (issuer,
-- audience); gateway tokens carry the incarnation they were minted under, so a token never outlives it.
ALTER TABLE "m2m_configs" ADD COLUMN "incarnation" UUID NOT NULL DEFAULT gen_random_uuid();
