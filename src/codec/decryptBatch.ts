import type { KeyObject } from 'node:crypto';
import { parseHeader, type ValueType } from '../crypto/ciphertext';
import type { KeyChoice } from './keyChoice';

/** Which stored values of a result go to a backend's batch decryption, and with what. */
export interface DecryptBatch {
  /** Indices into the stored values, ascending: the batch's values. */
  readonly batch: number[];
  /** Per batch value: its key, an index into `chosen`. */
  readonly keyOf: Uint32Array;
  /** Per batch value: where its header ends and its nonce text starts. */
  readonly starts: Uint32Array;
  readonly chosen: KeyObject[];
  /** Indices of the values left to the one-value reference path (no header, no usable key, another type), ascending. */
  readonly rest: number[];
}

/**
 * Sorts a result field's stored values into the batch and the rest, with one key lookup per
 * distinct header (per value under subject keys). Pure apart from the key choice's lookups.
 */
export function decryptBatch(stored: readonly string[], keys: KeyChoice, type: ValueType, subjectPrefix: string): DecryptBatch {
  const batch: number[] = [];
  const rest: number[] = [];
  const keyOf = new Uint32Array(stored.length);
  const starts = new Uint32Array(stored.length);
  // Header text -> index into `chosen`, or -1 when its values take the reference path (no usable key, another type).
  const slots = new Map<string, number>();
  const chosen: KeyObject[] = [];
  let last: { text: string; slot: number } | undefined;
  for (let i = 0; i < stored.length; i++) {
    const value = stored[i]!;
    // The header text ends with the ':' after the key id, so a value starting with it has that header.
    let slot: number;
    let start: number;
    if (last && value.startsWith(last.text)) {
      ({ slot } = last);
      start = last.text.length;
    } else if (value.startsWith(subjectPrefix)) {
      // Under subject keys every row has its own header: found by key id alone, without a full
      // parse. A key id the result's keys do not hold (or a damaged header) takes the reference
      // path, which classifies it exactly as parseHeader would.
      // One key lookup per value and no map of slots: a key listed twice (two rows of one
      // person) costs the native side about what a second map lookup per row would.
      const end = value.indexOf(':', subjectPrefix.length);
      const key = end < 0 ? 'unknown-key' : keys.forRead('subject', value.slice(subjectPrefix.length, end));
      slot = typeof key === 'string' ? -1 : chosen.push(key.key) - 1;
      start = end + 1;
    } else {
      const parsed = parseHeader(value);
      if (parsed.kind !== 'header') {
        rest.push(i);
        continue;
      }
      const text = value.slice(0, parsed.nonceStart);
      let known = slots.get(text);
      if (known === undefined) {
        const key = keys.forRead(parsed.header.scope, parsed.header.keyId);
        known = typeof key === 'string' || parsed.header.type !== type ? -1 : chosen.push(key.key) - 1;
        slots.set(text, known);
      }
      slot = known;
      start = parsed.nonceStart;
      last = { text, slot };
    }
    if (slot < 0) {
      rest.push(i);
      continue;
    }
    keyOf[batch.length] = slot;
    starts[batch.length] = start;
    batch.push(i);
  }
  return { batch, keyOf, starts, chosen, rest };
}
