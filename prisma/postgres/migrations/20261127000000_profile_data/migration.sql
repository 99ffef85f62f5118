-- AlterTable
ALTER TABLE "Profile" ADD COLUMN     "data" TEXT;
