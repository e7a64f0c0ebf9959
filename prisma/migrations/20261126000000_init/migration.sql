-- CreateEnum
CREATE TYPE "m2m_config_type" AS ENUM ('GENERIC', 'GITHUB_ACTIONS', 'KUBE_SERVICE_ACCOUNT');

-- CreateTable
CREATE TABLE "roles" (
    "name" TEXT NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "permissions" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "roles_pkey" PRIMARY KEY ("name")
);

-- CreateTable
CREATE TABLE "m2m_configs" (
    "id" UUID NOT NULL,
    "type" "m2m_config_type" NOT NULL,
    "token_expiration_duration" TEXT NOT NULL,
    "issuer" TEXT NOT NULL,
    "audience" TEXT NOT NULL DEFAULT '',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "m2m_configs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "m2m_mappings" (
    "config_id" UUID NOT NULL,
    "position" INTEGER NOT NULL,
    "key" TEXT NOT NULL,
    "value_expression" TEXT NOT NULL,
    "role_name" TEXT NOT NULL,

    CONSTRAINT "m2m_mappings_pkey" PRIMARY KEY ("config_id","position")
);

-- CreateTable
CREATE TABLE "admin_credentials" (
    "username" TEXT NOT NULL,
    "password_hash" TEXT NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "admin_credentials_pkey" PRIMARY KEY ("username")
);

-- CreateIndex
CREATE UNIQUE INDEX "m2m_configs_issuer_key" ON "m2m_configs"("issuer");

-- CreateIndex
CREATE INDEX "m2m_mappings_role_name_idx" ON "m2m_mappings"("role_name");

-- AddForeignKey
ALTER TABLE "m2m_mappings" ADD CONSTRAINT "m2m_mappings_config_id_fkey" FOREIGN KEY ("config_id") REFERENCES "m2m_configs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "m2m_mappings" ADD CONSTRAINT "m2m_mappings_role_name_fkey" FOREIGN KEY ("role_name") REFERENCES "roles"("name") ON DELETE RESTRICT ON UPDATE RESTRICT;
