-- AlterTable
ALTER TABLE `Profile` ADD COLUMN `data` VARCHAR(191) NULL;
