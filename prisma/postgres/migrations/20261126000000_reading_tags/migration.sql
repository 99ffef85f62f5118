-- CreateTable
CREATE TABLE "Tag" (
    "id" SERIAL NOT NULL,
    "label" TEXT NOT NULL,
    "labelIndex" TEXT,

    CONSTRAINT "Tag_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "_ReadingToTag" (
    "A" INTEGER NOT NULL,
    "B" INTEGER NOT NULL,

    CONSTRAINT "_ReadingToTag_AB_pkey" PRIMARY KEY ("A","B")
);

-- CreateIndex
CREATE UNIQUE INDEX "Tag_labelIndex_key" ON "Tag"("labelIndex");

-- CreateIndex
CREATE INDEX "_ReadingToTag_B_index" ON "_ReadingToTag"("B");

-- AddForeignKey
ALTER TABLE "_ReadingToTag" ADD CONSTRAINT "_ReadingToTag_A_fkey" FOREIGN KEY ("A") REFERENCES "Reading"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "_ReadingToTag" ADD CONSTRAINT "_ReadingToTag_B_fkey" FOREIGN KEY ("B") REFERENCES "Tag"("id") ON DELETE CASCADE ON UPDATE CASCADE;
