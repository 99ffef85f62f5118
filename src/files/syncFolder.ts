import { open } from 'node:fs/promises';

/**
 * Flushes a folder's entries (a rename, a newly created file) to disk, so a crash cannot lose a
 * file whose own contents were already synced. Some platforms cannot open or sync a folder
 * (EINVAL/EISDIR): the file's own sync is then all there is, and this returns quietly.
 */
export async function syncFolder(folder: string): Promise<void> {
  const dir = await open(folder, 'r').catch(() => undefined);
  if (!dir) return;
  try {
    await dir.sync();
  } catch {
    // Nothing more can be done where folders cannot be synced.
  } finally {
    await dir.close();
  }
}
