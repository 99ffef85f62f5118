-- CreateTable
CREATE TABLE "PfeAccount" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,
    "emailHash" TEXT,
    "name" TEXT,
    "phone" TEXT,
    "phoneHash" TEXT,
    "note" TEXT,

    CONSTRAINT "PfeAccount_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "PfeAccount_emailHash_key" ON "PfeAccount"("emailHash");

-- CreateIndex
CREATE INDEX "PfeAccount_phoneHash_idx" ON "PfeAccount"("phoneHash");
