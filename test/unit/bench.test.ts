import { encryptedFields } from '../../generated/postgres/encryption';
import { dmmfMismatches, type PeerDmmf } from '../../bench/peer/fieldEncryption';
import { frameTimes, type CpuProfile } from '../../bench/support/cpuProfile';
import { rawDecrypt, rawEncrypt, rawIndex, rawOpen } from '../../bench/support/rawCrypto';
import { rawHeader, VALUES, type TypedField } from '../../bench/typed';
import { median, quantile, summarize } from '../../bench/support/stats';
import { fmt, renderTable } from '../../bench/support/table';
import { evaluateTargets, type WorkloadResult } from '../../bench/targets';
import { RawKit } from '../../bench/workloads';
// The benchmark measures the built package (dist), so its helpers are typed against it.
import { localKeys } from '../../dist';
import { FieldCodec } from '../../dist/codec/fieldCodec';
import { randomKey } from '../support/keys';

describe('bench statistics', () => {
  test('quantiles interpolate between neighbours; median of even and odd series', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([10, 20, 30], 0.25)).toBe(15);
    expect(median([5, 1, 3])).toBe(3);
    expect(summarize([4, 1, 3, 2])).toEqual({ n: 4, median: 2.5, p25: 1.75, p75: 3.25, min: 1 });
    expect(() => quantile([], 0.5)).toThrow(RangeError);
  });

  test('tables align numbers right and text left under a rule', () => {
    const text = renderTable(['name', 'ms'], [['findMany', '1.50'], ['create', '10.25']]);
    expect(text.split('\n')).toEqual(['name         ms', '--------  -----', 'findMany   1.50', 'create    10.25']);
    expect(fmt(0.01234)).toBe('0.012');
    expect(fmt(12.345)).toBe('12.35');
    expect(fmt(Number.NaN)).toBe('n/a');
  });
});

describe('bench targets', () => {
  const s = (median: number) => ({ n: 1, median, p25: median, p75: median, min: median });
  const result = (name: string, plain: number, extension: number, peer: number, raw: number, absoluteTarget = false): WorkloadResult => ({
    workload: { name, kind: 'read', rounds: 1, warmup: 0, ops: { encrypt: 0, decrypt: 1, hmac: 0 }, absoluteTarget },
    summaries: { plain: s(plain), hook: s(plain), extension: s(extension), 'extension-node': s(extension), peer: s(peer), raw: s(raw) },
  });

  test('overhead over plain is compared with 1.2 x raw crypto, and the peer must be 2x slower', () => {
    const [overhead, peer] = evaluateTargets([result('w', 4, 15, 40, 10)]);
    expect(overhead).toMatchObject({ met: true });
    expect(peer).toMatchObject({ met: true });
    const [slow, close] = evaluateTargets([result('w', 4, 17, 30, 10)]);
    expect(slow).toMatchObject({ met: false });
    expect(close).toMatchObject({ met: false });
  });

  test('the native backend: findMany 1000 within 2.5 ms of plain and 4x ahead of the peer; smaller reads at 0.35x of node:crypto', () => {
    const big = evaluateTargets([result('findMany 1000 x 3 fields', 4, 6, 30, 10)]).slice(2);
    expect(big.map((c) => c.met)).toEqual([true, true]);
    const small = (native: number, node: number) => {
      const r = result('findMany 100 x 3 fields', 1, native, 10, 1);
      return evaluateTargets([{ ...r, summaries: { ...r.summaries, 'extension-node': s(node) } }])[2]!.met;
    };
    expect([small(1.3, 2), small(1.4, 2)]).toEqual([true, false]);
  });

  test('workloads with an absolute target must also be within 0.1 ms of plain', () => {
    const checks = evaluateTargets([result('findUnique', 0.5, 0.65, 2, 0.2, true)]);
    expect(checks.map((c) => c.met)).toEqual([true, false, true]);
  });
});

describe('raw node:crypto reference', () => {
  const keyring = localKeys({ data: [{ id: 'd1', key: randomKey() }], index: [{ id: 'i1', key: randomKey() }] });
  const kit = new RawKit(keyring);
  const spec = encryptedFields.models.User.encrypted.email;
  const codec = new FieldCodec('User', 'email', spec as never, keyring, () => undefined);

  test('does the same work as the extension: each decrypts what the other encrypted', () => {
    const aad = kit.aad('User.email');
    for (const text of ['a@example.org', 'Zoë ♒ 水瓶座', '']) {
      expect(codec.decrypt(rawEncrypt(kit.dataKey, kit.header, aad, text))).toBe(text);
      expect(rawDecrypt(kit.dataKey, kit.header.length, aad, codec.encrypt(text))).toBe(text);
    }
  });

  test('typed fields: the same envelope header and AAD, so each decrypts what the other encrypted', () => {
    for (const field of Object.keys(VALUES) as TypedField[]) {
      const typed = new FieldCodec('NatalChart', field, encryptedFields.models.NatalChart.encrypted[field] as never, keyring, () => undefined);
      const { header, aad } = rawHeader(keyring, field);
      const value = VALUES[field](7);
      const plaintext = rawOpen(kit.dataKey, header.length, aad, typed.encrypt(value));
      expect({ field, value: typed.decrypt(rawEncrypt(kit.dataKey, header, aad, plaintext)) }).toEqual({ field, value });
    }
  });

  test('computes the blind index the extension stores', () => {
    const value = '  Someone@Example.org ';
    expect(rawIndex(kit.indexKey('User.email'), kit.indexPrefix, value.normalize('NFKC').trim().toLowerCase())).toBe(codec.indexForWrite(value));
  });
});

describe('peer DMMF check', () => {
  const dmmf = {
    datamodel: { models: [{ name: 'User', fields: [{ name: 'email', type: 'String', isList: false, isUnique: false, isId: false }] }] },
  } as unknown as PeerDmmf;

  test('is empty when every model and field exists with the same type, and names what does not', () => {
    expect(dmmfMismatches(dmmf, { models: { User: { fields: [{ name: 'email', kind: 'scalar', type: 'String' }] } } })).toEqual([]);
    expect(dmmfMismatches(dmmf, { models: { User: { fields: [{ name: 'email', kind: 'scalar', type: 'Int' }] } } })).toEqual(['User.email']);
    expect(dmmfMismatches(dmmf, { models: {} })).toEqual(['model User']);
  });
});

describe('cpu profile summary', () => {
  test('attributes self time to the sampled frame and total time to its callers once', () => {
    const frame = (id: number, functionName: string, children: number[] = []) => ({ id, callFrame: { functionName, url: 'file:///x/app.js', lineNumber: id }, children });
    const profile: CpuProfile = {
      nodes: [frame(1, 'main', [2]), frame(2, 'walk', [3]), frame(3, 'decrypt')],
      samples: [3, 3, 2, 1],
      timeDeltas: [0, 1000, 1000, 1000, 1000],
      startTime: 0,
      endTime: 4000,
    };
    const times = Object.fromEntries(frameTimes(profile).map((t) => [t.frame.split(' ')[0], [t.self, t.total]]));
    expect(times).toEqual({ decrypt: [2, 2], walk: [1, 3], main: [1, 4] });
  });
});
