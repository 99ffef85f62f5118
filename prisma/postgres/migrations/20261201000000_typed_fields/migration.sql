-- CreateTable
CREATE TABLE "NatalChart" (
    "id" SERIAL NOT NULL,
    "userId" TEXT,
    "label" TEXT,
    "bornAt" TIMESTAMP(3),
    "bornAtCipher" TEXT,
    "bornAtIndex" TEXT,
    "birthDay" DATE,
    "birthDayCipher" TEXT,
    "birthDayIndex" TEXT,
    "recordedAt" TIMESTAMP(0),
    "recordedAtCipher" TEXT,
    "recordedAtIndex" TEXT,
    "accuracy" INTEGER,
    "accuracyCipher" TEXT,
    "accuracyIndex" TEXT,
    "ephemeris" BIGINT,
    "ephemerisCipher" TEXT,
    "ephemerisIndex" TEXT,
    "latitude" DOUBLE PRECISION,
    "latitudeCipher" TEXT,
    "latitudeIndex" TEXT,
    "fee" DECIMAL(65,30),
    "feeCipher" TEXT,
    "feeIndex" TEXT,
    "consent" BOOLEAN,
    "consentCipher" TEXT,
    "consentIndex" TEXT,
    "chart" JSONB,
    "chartCipher" TEXT,
    "chartIndex" TEXT,
    "portrait" BYTEA,
    "portraitCipher" TEXT,
    "portraitIndex" TEXT,
    "notedAt" TIMESTAMP(3),
    "notedAtCipher" TEXT,

    CONSTRAINT "NatalChart_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "LegacyBirth" (
    "id" SERIAL NOT NULL,
    "name" TEXT,
    "birthDate" TIMESTAMP(3),

    CONSTRAINT "LegacyBirth_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "NatalChart_userId_idx" ON "NatalChart"("userId");

-- CreateIndex
CREATE INDEX "NatalChart_bornAtIndex_idx" ON "NatalChart"("bornAtIndex");

-- AddForeignKey
ALTER TABLE "NatalChart" ADD CONSTRAINT "NatalChart_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;
