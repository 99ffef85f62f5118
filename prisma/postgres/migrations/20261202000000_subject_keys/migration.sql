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

-- Test models with per-subject keys.

-- CreateTable
CREATE TABLE "Person" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,
    "emailIndex" TEXT,
    "name" TEXT,
    "birthDate" TIMESTAMP(3),
    "birthDateCipher" TEXT,

    CONSTRAINT "Person_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "PersonProfile" (
    "id" SERIAL NOT NULL,
    "personId" INTEGER NOT NULL,
    "bio" TEXT,
    "chart" JSONB,
    "chartCipher" TEXT,

    CONSTRAINT "PersonProfile_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "PersonReading" (
    "id" TEXT NOT NULL,
    "personId" INTEGER NOT NULL,
    "text" TEXT NOT NULL,
    "topic" TEXT,
    "topicIndex" TEXT,

    CONSTRAINT "PersonReading_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Client" (
    "id" TEXT NOT NULL,
    "email" TEXT NOT NULL,
    "emailIndex" TEXT,
    "name" TEXT,

    CONSTRAINT "Client_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Person_emailIndex_key" ON "Person"("emailIndex");

-- CreateIndex
CREATE UNIQUE INDEX "PersonProfile_personId_key" ON "PersonProfile"("personId");

-- CreateIndex
CREATE INDEX "PersonReading_personId_idx" ON "PersonReading"("personId");

-- CreateIndex
CREATE INDEX "PersonReading_topicIndex_idx" ON "PersonReading"("topicIndex");

-- CreateIndex
CREATE INDEX "Client_emailIndex_idx" ON "Client"("emailIndex");

-- AddForeignKey
ALTER TABLE "PersonProfile" ADD CONSTRAINT "PersonProfile_personId_fkey" FOREIGN KEY ("personId") REFERENCES "Person"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "PersonReading" ADD CONSTRAINT "PersonReading_personId_fkey" FOREIGN KEY ("personId") REFERENCES "Person"("id") ON DELETE CASCADE ON UPDATE CASCADE;
