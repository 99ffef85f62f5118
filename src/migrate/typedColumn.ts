import { Decimal } from '@prisma/client/runtime/client';
import type { ValueType } from '../crypto/ciphertext';
import type { SqlConnection } from './connection';

/**
 * A typed field's own column as the migrator sees it: as text, in one exact form per type, so
 * that `encrypt-existing` can parse legacy values without the drivers' own conversions (the pg
 * driver reads `timestamp` in the process's local time zone) and its compare-and-set guard can
 * compare the column with what it read, byte for byte.
 */

/** SQL for the text form of `column` (already quoted, maybe qualified) holding values of `type`. */
export function typedText(conn: SqlConnection, column: string, type: ValueType): string {
  const pg = conn.dialect === 'postgres';
  switch (type) {
    case 'DateTime':
      // Milliseconds since the epoch, reading the column as UTC (how Prisma writes it), whatever the session time zone.
      return pg ? `(EXTRACT(EPOCH FROM ${column}) * 1000)::text` : `CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', ${column}) / 1000 AS CHAR)`;
    case 'Bytes':
      return pg ? `encode(${column}, 'hex')` : `HEX(${column})`;
    default:
      return pg ? `${column}::text` : `CAST(${column} AS CHAR)`;
  }
}

/** The value a text form from {@link typedText} stands for, in the type Prisma would return. */
export function fromTypedText(type: ValueType, text: string): unknown {
  switch (type) {
    case 'DateTime':
      return new Date(Math.trunc(Number(text)));
    case 'Bytes':
      return new Uint8Array(Buffer.from(text, 'hex'));
    case 'Int':
    case 'Float':
      return Number(text);
    case 'BigInt':
      return BigInt(text);
    case 'Decimal':
      return new Decimal(text);
    case 'Boolean':
      return text === 'true' || text === '1';
    case 'Json':
      return JSON.parse(text) as unknown;
    case 'String':
      return text;
  }
}
