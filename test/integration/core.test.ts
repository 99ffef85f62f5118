import { createHarness, providers, type Harness } from '../support/clients';

describe.each(providers())('core round trip on %s', (provider) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(provider);
  });
  afterAll(async () => {
    await h?.close();
  });

  test('create stores ciphertext and reads plaintext back', async () => {
    const user = await h.prisma.user.create({ data: { email: 'Ada@Example.org ', name: 'Ada', phone: '+44 20 7946 0000' } });
    expect(user.email).toBe('Ada@Example.org ');
    const [raw] = await h.sql(`SELECT * FROM ${h.q('User')} WHERE id = $1`, [user.id]);
    expect(String(raw!.email)).toMatch(/^pce:v1:d1:/);
    expect(String(raw!.name)).toMatch(/^pce:v1:d1:/);
    expect(String(raw!.emailIndex)).toMatch(/^i1:/);
    const found = await h.prisma.user.findFirst({ where: { email: 'ada@example.org' } });
    expect(found?.id).toBe(user.id);
    expect(found?.name).toBe('Ada');
  });
});
