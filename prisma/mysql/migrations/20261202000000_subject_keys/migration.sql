-- Per-subject keys (issue 11). pce_subject_keys and pce_erasures are owned by
-- prisma-column-encryption: applications apply these two CREATE TABLEs as they are. Key ids and
-- subject ids compare byte for byte (binary collations): 'abc' and 'ABC' are two subjects.

-- CreateTable
CREATE TABLE `pce_subject_keys` (
    `key_id` VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    `subject_id` VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    `wrap_key_id` VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL,
    `wrapped_key` TEXT NULL,
    `created_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    `erased_at` DATETIME(3) NULL,

    UNIQUE INDEX `pce_subject_keys_subject_id_key`(`subject_id`),
    INDEX `pce_subject_keys_wrap_key_id_idx`(`wrap_key_id`),
    PRIMARY KEY (`key_id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- CreateTable
CREATE TABLE `pce_erasures` (
    `subject_id` VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    `erased_at` DATETIME(3) NOT NULL,

    PRIMARY KEY (`subject_id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- Test models with per-subject keys.

-- CreateTable
CREATE TABLE `Person` (
    `id` INTEGER NOT NULL AUTO_INCREMENT,
    `email` TEXT NOT NULL,
    `emailIndex` VARCHAR(191) NULL,
    `name` TEXT NULL,
    `birthDate` DATETIME(3) NULL,
    `birthDateCipher` TEXT NULL,

    UNIQUE INDEX `Person_emailIndex_key`(`emailIndex`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- CreateTable
CREATE TABLE `PersonProfile` (
    `id` INTEGER NOT NULL AUTO_INCREMENT,
    `personId` INTEGER NOT NULL,
    `bio` TEXT NULL,
    `chart` JSON NULL,
    `chartCipher` TEXT NULL,

    UNIQUE INDEX `PersonProfile_personId_key`(`personId`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- CreateTable
CREATE TABLE `PersonReading` (
    `id` VARCHAR(191) NOT NULL,
    `personId` INTEGER NOT NULL,
    `text` TEXT NOT NULL,
    `topic` TEXT NULL,
    `topicIndex` VARCHAR(191) NULL,

    INDEX `PersonReading_personId_idx`(`personId`),
    INDEX `PersonReading_topicIndex_idx`(`topicIndex`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- CreateTable
CREATE TABLE `Client` (
    `id` VARCHAR(191) NOT NULL,
    `email` TEXT NOT NULL,
    `emailIndex` VARCHAR(191) NULL,
    `name` TEXT NULL,

    INDEX `Client_emailIndex_idx`(`emailIndex`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- AddForeignKey
ALTER TABLE `PersonProfile` ADD CONSTRAINT `PersonProfile_personId_fkey` FOREIGN KEY (`personId`) REFERENCES `Person`(`id`) ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE `PersonReading` ADD CONSTRAINT `PersonReading_personId_fkey` FOREIGN KEY (`personId`) REFERENCES `Person`(`id`) ON DELETE CASCADE ON UPDATE CASCADE;
