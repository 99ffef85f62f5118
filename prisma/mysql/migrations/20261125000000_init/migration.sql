-- CreateTable
CREATE TABLE `User` (
    `id` VARCHAR(191) NOT NULL,
    `email` TEXT NOT NULL,
    `emailIndex` VARCHAR(191) NULL,
    `name` TEXT NULL,
    `phone` TEXT NULL,
    `phoneIndex` VARCHAR(191) NULL,
    `nickname` VARCHAR(191) NULL,
    `karma` INTEGER NOT NULL DEFAULT 0,
    `createdAt` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),

    UNIQUE INDEX `User_emailIndex_key`(`emailIndex`),
    INDEX `User_phoneIndex_idx`(`phoneIndex`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- CreateTable
CREATE TABLE `Profile` (
    `id` INTEGER NOT NULL AUTO_INCREMENT,
    `userId` VARCHAR(191) NOT NULL,
    `birthDate` TEXT NOT NULL,
    `birthTime` TEXT NULL,
    `birthPlace` TEXT NULL,
    `birthPlaceIndex` VARCHAR(191) NULL,
    `sunSign` TEXT NULL,
    `sunSignIndex` VARCHAR(191) NULL,
    `public` BOOLEAN NOT NULL DEFAULT false,

    UNIQUE INDEX `Profile_userId_key`(`userId`),
    INDEX `Profile_birthPlaceIndex_idx`(`birthPlaceIndex`),
    INDEX `Profile_sunSignIndex_idx`(`sunSignIndex`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- CreateTable
CREATE TABLE `Reading` (
    `id` INTEGER NOT NULL AUTO_INCREMENT,
    `userId` VARCHAR(191) NOT NULL,
    `title` VARCHAR(191) NOT NULL,
    `body` TEXT NOT NULL,
    `topic` TEXT NULL,
    `topicIndex` VARCHAR(191) NULL,
    `stars` INTEGER NOT NULL DEFAULT 0,
    `createdAt` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),

    INDEX `Reading_userId_idx`(`userId`),
    INDEX `Reading_topicIndex_idx`(`topicIndex`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- CreateTable
CREATE TABLE `ReadingNote` (
    `id` INTEGER NOT NULL AUTO_INCREMENT,
    `readingId` INTEGER NOT NULL,
    `text` TEXT NOT NULL,

    INDEX `ReadingNote_readingId_idx`(`readingId`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- CreateTable
CREATE TABLE `Membership` (
    `orgId` VARCHAR(191) NOT NULL,
    `userId` VARCHAR(191) NOT NULL,
    `role` TEXT NOT NULL,
    `roleIndex` VARCHAR(191) NULL,

    INDEX `Membership_roleIndex_idx`(`roleIndex`),
    PRIMARY KEY (`orgId`, `userId`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- CreateTable
CREATE TABLE `LegacyContact` (
    `id` INTEGER NOT NULL AUTO_INCREMENT,
    `email` TEXT NULL,
    `emailIndex` VARCHAR(191) NULL,
    `notes` TEXT NULL,

    INDEX `LegacyContact_emailIndex_idx`(`emailIndex`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- AddForeignKey
ALTER TABLE `Profile` ADD CONSTRAINT `Profile_userId_fkey` FOREIGN KEY (`userId`) REFERENCES `User`(`id`) ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE `Reading` ADD CONSTRAINT `Reading_userId_fkey` FOREIGN KEY (`userId`) REFERENCES `User`(`id`) ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE `ReadingNote` ADD CONSTRAINT `ReadingNote_readingId_fkey` FOREIGN KEY (`readingId`) REFERENCES `Reading`(`id`) ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE `Membership` ADD CONSTRAINT `Membership_userId_fkey` FOREIGN KEY (`userId`) REFERENCES `User`(`id`) ON DELETE CASCADE ON UPDATE CASCADE;
