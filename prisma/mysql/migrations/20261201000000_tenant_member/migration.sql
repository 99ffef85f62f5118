-- CreateTable
CREATE TABLE `TenantMember` (
    `id` INTEGER NOT NULL AUTO_INCREMENT,
    `tenant` VARCHAR(191) NOT NULL,
    `email` TEXT NOT NULL,
    `emailIdx` VARCHAR(191) NULL,
    `name` TEXT NULL,

    UNIQUE INDEX `TenantMember_tenant_emailIdx_key`(`tenant`, `emailIdx`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
