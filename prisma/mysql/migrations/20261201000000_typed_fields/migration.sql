-- CreateTable
CREATE TABLE `NatalChart` (
    `id` INTEGER NOT NULL AUTO_INCREMENT,
    `userId` VARCHAR(191) NULL,
    `label` VARCHAR(191) NULL,
    `bornAt` DATETIME(3) NULL,
    `bornAtCipher` TEXT NULL,
    `bornAtIndex` VARCHAR(191) NULL,
    `birthDay` DATE NULL,
    `birthDayCipher` TEXT NULL,
    `birthDayIndex` VARCHAR(191) NULL,
    `recordedAt` DATETIME(0) NULL,
    `recordedAtCipher` TEXT NULL,
    `recordedAtIndex` VARCHAR(191) NULL,
    `accuracy` INTEGER NULL,
    `accuracyCipher` TEXT NULL,
    `accuracyIndex` VARCHAR(191) NULL,
    `ephemeris` BIGINT NULL,
    `ephemerisCipher` TEXT NULL,
    `ephemerisIndex` VARCHAR(191) NULL,
    `latitude` DOUBLE NULL,
    `latitudeCipher` TEXT NULL,
    `latitudeIndex` VARCHAR(191) NULL,
    `fee` DECIMAL(65, 30) NULL,
    `feeCipher` TEXT NULL,
    `feeIndex` VARCHAR(191) NULL,
    `consent` BOOLEAN NULL,
    `consentCipher` TEXT NULL,
    `consentIndex` VARCHAR(191) NULL,
    `chart` JSON NULL,
    `chartCipher` TEXT NULL,
    `chartIndex` VARCHAR(191) NULL,
    `portrait` LONGBLOB NULL,
    `portraitCipher` TEXT NULL,
    `portraitIndex` VARCHAR(191) NULL,
    `notedAt` DATETIME(3) NULL,
    `notedAtCipher` TEXT NULL,

    INDEX `NatalChart_userId_idx`(`userId`),
    INDEX `NatalChart_bornAtIndex_idx`(`bornAtIndex`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- CreateTable
CREATE TABLE `LegacyBirth` (
    `id` INTEGER NOT NULL AUTO_INCREMENT,
    `name` VARCHAR(191) NULL,
    `birthDate` DATETIME(3) NULL,

    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- AddForeignKey
ALTER TABLE `NatalChart` ADD CONSTRAINT `NatalChart_userId_fkey` FOREIGN KEY (`userId`) REFERENCES `User`(`id`) ON DELETE CASCADE ON UPDATE CASCADE;
