-- Audit retention (AUDIT_RETENTION): the trail stays append-only, except that
-- the retention job may delete rows older than a floor it sets for its own
-- transaction:
--     SELECT set_config('m2m_gateway.audit_retention_before', '<timestamptz>', true);  -- SET LOCAL
-- UPDATE and TRUNCATE are still refused, and so is any DELETE without that
-- setting, or of a row not older than it. (Whoever may change the setting may
-- also drop the trigger: this keeps the gateway, and mistakes, from removing
-- records, not the owner of the database.)

DROP TRIGGER "audit_events_append_only" ON "audit_events";

CREATE TRIGGER "audit_events_append_only" BEFORE UPDATE OR TRUNCATE ON "audit_events"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_events_append_only"();

CREATE FUNCTION "audit_events_retention_only"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    floor_text TEXT := NULLIF(current_setting('m2m_gateway.audit_retention_before', true), '');
BEGIN
    IF floor_text IS NULL THEN
        RAISE EXCEPTION 'audit_events is append-only: rows are deleted only by the retention job';
    END IF;
    IF TG_LEVEL = 'STATEMENT' THEN
        RETURN NULL;
    END IF;
    IF OLD."occurred_at" < floor_text::TIMESTAMPTZ THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: event % is not older than the retention floor %', OLD."id", floor_text;
END
$$;

-- The statement trigger refuses a DELETE without a floor even when it matches no row.
CREATE TRIGGER "audit_events_delete_statement" BEFORE DELETE ON "audit_events"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_events_retention_only"();
CREATE TRIGGER "audit_events_delete_row" BEFORE DELETE ON "audit_events"
    FOR EACH ROW EXECUTE FUNCTION "audit_events_retention_only"();
