-- AlterTable
ALTER TABLE "LegacyBirth" ADD COLUMN     "birthDateCipher" TEXT,
ADD COLUMN     "birthDateIndex" TEXT;

-- CreateIndex
CREATE INDEX "LegacyBirth_birthDateIndex_idx" ON "LegacyBirth"("birthDateIndex");
