-- CreateTable
CREATE TABLE `PfeAccount` (
    `id` INTEGER NOT NULL AUTO_INCREMENT,
    `email` TEXT NOT NULL,
    `emailHash` VARCHAR(191) NULL,
    `name` TEXT NULL,
    `phone` TEXT NULL,
    `phoneHash` VARCHAR(191) NULL,
    `note` VARCHAR(191) NULL,

    UNIQUE INDEX `PfeAccount_emailHash_key`(`emailHash`),
    INDEX `PfeAccount_phoneHash_idx`(`phoneHash`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
