import { randomBytes } from 'node:crypto';
import { encryptedFields } from '../../generated/postgres/encryption';
import { DecryptionError } from '../../src';
import { decryptResult } from '../../src/extension/decryptResult';
import { buildRuntimeSchema } from '../../src/extension/runtimeSchema';
import { WalkContext } from '../../src/extension/walkContext';
import { testKeyring } from '../support/keys';

describe('decryptResult', () => {
  const keyring = testKeyring();
  const schema = buildRuntimeSchema(encryptedFields, keyring, () => undefined);
  const user = schema.get('User')!;
  const reading = schema.get('Reading')!;
  const enc = (model: string, field: string, value: string) => schema.get(model)!.codecs.get(field)!.encrypt(value);
  const context = () => new WalkContext(schema, 'findMany', () => undefined);

  test('decrypts rows, nested lists and to-one relations in place, and counts what it decrypted', () => {
    const rows = [
      {
        id: 'u1',
        email: enc('User', 'email', 'a@example.org'),
        name: null,
        nickname: 'kept',
        readings: [{ id: 1, title: 'plain title', body: enc('Reading', 'body', 'first'), topic: enc('Reading', 'topic', 'Love') }],
        profile: { id: 7, birthDate: enc('Profile', 'birthDate', '1990-01-01'), birthPlace: null },
      },
      { id: 'u2', email: enc('User', 'email', 'b@example.org'), readings: [], profile: null },
      null,
    ];
    const ctx = context();
    decryptResult(ctx, user, rows);
    expect(rows[0]).toEqual({
      id: 'u1',
      email: 'a@example.org',
      name: null,
      nickname: 'kept',
      readings: [{ id: 1, title: 'plain title', body: 'first', topic: 'Love' }],
      profile: { id: 7, birthDate: '1990-01-01', birthPlace: null },
    });
    expect(rows[1]).toEqual({ id: 'u2', email: 'b@example.org', readings: [], profile: null });
    expect(ctx.stats.decrypted).toBe(5);
  });

  test('gives the same answers on repeated calls for the same model', () => {
    for (let i = 0; i < 3; i++) {
      const row = { body: enc('Reading', 'body', `text ${i}`), user: { email: enc('User', 'email', `u${i}@example.org`) } };
      decryptResult(context(), reading, row);
      expect(row).toEqual({ body: `text ${i}`, user: { email: `u${i}@example.org` } });
    }
  });

  test('raises a DecryptionError naming model and field for a value under an unknown key', () => {
    const other = testKeyring({ data: [{ id: 'zz', key: randomBytes(32).toString('base64') }] });
    const foreign = buildRuntimeSchema(encryptedFields, other, () => undefined).get('User')!.codecs.get('email')!.encrypt('x@example.org');
    let caught: unknown;
    try {
      decryptResult(context(), user, [{ email: foreign }]);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(DecryptionError);
    expect(caught).toMatchObject({ model: 'User', field: 'email', keyId: 'zz' });
  });
});
