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
