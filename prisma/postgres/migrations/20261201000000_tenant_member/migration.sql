-- CreateTable
CREATE TABLE "TenantMember" (
    "id" SERIAL NOT NULL,
    "tenant" TEXT NOT NULL,
    "email" TEXT NOT NULL,
    "emailIdx" TEXT,
    "name" TEXT,

    CONSTRAINT "TenantMember_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "TenantMember_tenant_emailIdx_key" ON "TenantMember"("tenant", "emailIdx");
