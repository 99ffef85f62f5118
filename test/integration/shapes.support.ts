import { Writable } from 'node:stream';
import pino from 'pino';
import { encryptedFields } from '../../generated/postgres/encryption';
import { UnsupportedQueryError } from '../../src';
import { FieldCodec } from '../../src/codec/fieldCodec';
import type { EncryptionSchema } from '../../src/schema';
import type { Harness } from '../support/clients';

/**
 * Assertions shared by the shapes.*.test.ts files. They read raw columns with SQL and check them
 * with codecs built independently of the client under test (same keyring, fresh instances).
 */

const schema = encryptedFields as unknown as EncryptionSchema;

export type Row = Record<string, unknown>;

/** A codec for one annotated field, bound to the harness keyring. */
export function codecFor(h: Harness, model: string, field: string): FieldCodec {
  const spec = schema.models[model]?.encrypted[field];
  if (!spec) throw new Error(`${model}.${field} is not annotated`);
  return new FieldCodec(model, field, spec, h.keyring, () => undefined);
}

/** Raw rows of a table, optionally restricted by a column value. */
export async function rawRows(h: Harness, model: string, column?: string, value?: unknown): Promise<Row[]> {
  const table = h.q(schema.models[model]!.dbName);
  return column === undefined
    ? h.sql(`SELECT * FROM ${table}`)
    : h.sql(`SELECT * FROM ${table} WHERE ${h.q(column)} = $1`, [value]);
}

/**
 * Checks one stored row against the plaintexts it should hold: each annotated value is ciphertext
 * that does not contain the plaintext, decrypts to it, and its blind index equals the index
 * recomputed from the decrypted value. `null` expects both columns null.
 */
export async function expectAtRest(h: Harness, model: string, id: unknown, expected: Record<string, string | null>): Promise<Row> {
  const [row] = await rawRows(h, model, 'id', id);
  if (!row) throw new Error(`${model} ${String(id)} is not stored`);
  for (const [field, plain] of Object.entries(expected)) {
    const codec = codecFor(h, model, field);
    const stored = row[field];
    if (plain === null) {
      expect(stored).toBeNull();
      if (codec.indexField) expect(row[codec.indexField]).toBeNull();
      continue;
    }
    expect(stored).toEqual(expect.stringMatching(/^pce:v1:d1:/));
    if (plain.length >= 4) expect(stored).not.toContain(plain);
    const decrypted = codec.decrypt(stored as string);
    expect(decrypted).toBe(plain);
    if (codec.indexField) expect(row[codec.indexField]).toBe(codec.indexForWrite(decrypted));
  }
  return row;
}

/**
 * Scans every row of a table: annotated values are ciphertext and every blind index equals the
 * index recomputed from the decrypted value (null with null). Returns the number of rows seen.
 */
export async function expectTableInStep(h: Harness, model: string): Promise<number> {
  const rows = await rawRows(h, model);
  for (const row of rows) {
    for (const field of Object.keys(schema.models[model]!.encrypted)) {
      const codec = codecFor(h, model, field);
      // A typed field's column stays NULL; its ciphertext is in the storage column.
      if (codec.storageField) expect(row[field]).toBeNull();
      const stored = row[codec.storageField ?? field];
      if (stored === null) {
        if (codec.indexField) expect(row[codec.indexField]).toBeNull();
        continue;
      }
      expect(stored).toEqual(expect.stringMatching(codec.storageField ? /^pce:v2:[a-z]:k:/ : /^pce:v1:/));
      if (codec.indexField) expect(row[codec.indexField]).toBe(codec.indexForWrite(codec.decrypt(stored as string)));
    }
  }
  return rows.length;
}

/** Expects the typed refusal naming model, field and operator. */
export async function expectRefused(run: () => Promise<unknown>, model: string, field: string, operator: string): Promise<UnsupportedQueryError> {
  let caught: unknown;
  try {
    await run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(UnsupportedQueryError);
  expect(caught).toMatchObject({ code: 'PCE_UNSUPPORTED_QUERY', model, field, operator });
  expect((caught as Error).message).toContain(`${model}.${field}`);
  expect((caught as Error).message).toContain(`'${operator}'`);
  // The test schema names every index field `<field>Index`: the message says which kind of field it is.
  const kind = field.endsWith('Index') ? 'index' : 'encrypted';
  expect(caught).toMatchObject({ fieldKind: kind });
  expect((caught as Error).message).toContain(`is not supported on an ${kind} field`);
  return caught as UnsupportedQueryError;
}

/** Unique-enough plaintexts per test, long enough that a substring check is meaningful. */
let counter = 0;
export function unique(prefix: string): string {
  counter += 1;
  return `${prefix}-${counter}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A debug-level pino logger that keeps the extension's per-query crypto counts. */
export function statsRecorder(): { logger: pino.Logger; stats: Array<{ model: string; operation: string; encrypted: number; decrypted: number; indexed: number }> } {
  const stats: Array<{ model: string; operation: string; encrypted: number; decrypted: number; indexed: number }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        const entry = JSON.parse(line) as { event?: string } & (typeof stats)[number];
        if (entry.event === 'pce.query.crypto') stats.push(entry);
      }
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), stats };
}
