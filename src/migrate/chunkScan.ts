import type { ChunkBound } from './checkpoint';
import type { KeyTuple } from './keyCodec';
import type { RunContext } from './runContext';
import type { ModelTarget } from './scope';
import { readKeyPage } from './sql';

/**
 * Chunk boundaries every `batchSize` rows that need work, from a keyset scan of primary keys
 * only (each page an index range scan: see readKeyPage). A real run records them in its
 * checkpoint; a dry run walks them the same way, so both read the table alike.
 */
export async function* chunkBounds(ctx: RunContext, target: ModelTarget): AsyncIterable<ChunkBound> {
  const page = Math.max(ctx.batchSize, 5000);
  let after: KeyTuple | undefined;
  let count = 0;
  for (;;) {
    const rows = await readKeyPage(ctx.conn, target, after, page, ctx.filter);
    for (const row of rows) {
      if (row.work && ++count === ctx.batchSize) {
        yield { upper: row.key, planned: count };
        count = 0;
      }
    }
    if (rows.length < page) break;
    after = rows[rows.length - 1]!.key;
  }
  // The last chunk is open-ended, so rows inserted at the end of the key space meanwhile are covered.
  yield { upper: undefined, planned: count };
}
