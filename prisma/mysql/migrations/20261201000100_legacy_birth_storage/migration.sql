-- AlterTable
ALTER TABLE `LegacyBirth` ADD COLUMN `birthDateCipher` TEXT NULL,
    ADD COLUMN `birthDateIndex` VARCHAR(191) NULL;

-- CreateIndex
CREATE INDEX `LegacyBirth_birthDateIndex_idx` ON `LegacyBirth`(`birthDateIndex`);
