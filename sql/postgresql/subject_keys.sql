-- Per-subject keys (issue 11). pce_subject_keys and pce_erasures are owned by
-- prisma-column-encryption: applications apply these two CREATE TABLEs as they are.

-- CreateTable
CREATE TABLE "pce_subject_keys" (
    "key_id" VARCHAR(32) NOT NULL,
    "subject_id" VARCHAR(191),
    "wrap_key_id" VARCHAR(32),
    "wrapped_key" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "erased_at" TIMESTAMP(3),

    CONSTRAINT "pce_subject_keys_pkey" PRIMARY KEY ("key_id")
);

-- CreateTable
CREATE TABLE "pce_erasures" (
    "subject_id" VARCHAR(191) NOT NULL,
    "erased_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "pce_erasures_pkey" PRIMARY KEY ("subject_id")
);

-- CreateIndex
CREATE UNIQUE INDEX "pce_subject_keys_subject_id_key" ON "pce_subject_keys"("subject_id");

-- CreateIndex
CREATE INDEX "pce_subject_keys_wrap_key_id_idx" ON "pce_subject_keys"("wrap_key_id");
