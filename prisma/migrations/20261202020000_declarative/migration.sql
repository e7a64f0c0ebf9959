-- Where a config or role comes from: IMPERATIVE (made through the API) or DECLARATIVE (applied from the files of
-- DECLARATIVE_CONFIG_DIR). The API refuses to change or delete declarative objects; only their files do.
CREATE TYPE "origin" AS ENUM ('IMPERATIVE', 'DECLARATIVE');

ALTER TABLE "m2m_configs" ADD COLUMN "origin" "origin" NOT NULL DEFAULT 'IMPERATIVE';
ALTER TABLE "roles" ADD COLUMN "origin" "origin" NOT NULL DEFAULT 'IMPERATIVE';
