-- Policy extensions of a config: conditions (AND-ed before mappings), ID token hygiene and stored tests.
ALTER TABLE "m2m_configs" ADD COLUMN "conditions" JSONB NOT NULL DEFAULT '[]';
ALTER TABLE "m2m_configs" ADD COLUMN "max_token_age" TEXT NOT NULL DEFAULT '';
ALTER TABLE "m2m_configs" ADD COLUMN "single_use" BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE "m2m_configs" ADD COLUMN "tests" JSONB NOT NULL DEFAULT '[]';

-- Several configs per issuer, one per audience (the empty audience included).
DROP INDEX "m2m_configs_issuer_key";
CREATE UNIQUE INDEX "m2m_configs_issuer_audience_key" ON "m2m_configs"("issuer", "audience");

-- Single-use ID tokens: each (issuer, jti) is claimed once across all replicas, and forgotten after it expires.
CREATE TABLE "used_id_tokens" (
    "issuer" TEXT NOT NULL,
    "jti" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "used_id_tokens_pkey" PRIMARY KEY ("issuer", "jti")
);

CREATE INDEX "used_id_tokens_expires_at_idx" ON "used_id_tokens"("expires_at");
