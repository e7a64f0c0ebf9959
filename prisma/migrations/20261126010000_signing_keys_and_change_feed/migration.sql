-- CreateTable
CREATE TABLE "signing_keys" (
    "kid" TEXT NOT NULL,
    "alg" TEXT NOT NULL,
    "public_jwk" JSONB NOT NULL,
    "encrypted_private_key" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "retired_at" TIMESTAMPTZ(3),

    CONSTRAINT "signing_keys_pkey" PRIMARY KEY ("kid")
);

-- Replicas keep configs, roles and keys in memory; every change to them is
-- announced on one channel so that each replica reloads (SPEC §4: within 1 s).
CREATE FUNCTION "notify_gateway_change"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('m2m_gateway_changes', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER "m2m_configs_changed" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "m2m_configs"
    FOR EACH STATEMENT EXECUTE FUNCTION "notify_gateway_change"();
CREATE TRIGGER "m2m_mappings_changed" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "m2m_mappings"
    FOR EACH STATEMENT EXECUTE FUNCTION "notify_gateway_change"();
CREATE TRIGGER "roles_changed" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "roles"
    FOR EACH STATEMENT EXECUTE FUNCTION "notify_gateway_change"();
CREATE TRIGGER "signing_keys_changed" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "signing_keys"
    FOR EACH STATEMENT EXECUTE FUNCTION "notify_gateway_change"();
