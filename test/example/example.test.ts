import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');

/** `npm run example` against the test server: it shows the query strings it searched with and what they found. */
test('the example prints what it searched with, normalised, the decrypted record it found, its typed chart, and a person forgotten', async () => {
  const { stdout } = await run(join(ROOT, 'node_modules', '.bin', 'tsx'), ['examples/astrology.ts'], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: process.env.PCE_TEST_POSTGRES_ADMIN_URL, PCE_DATA_KEYS: '', PCE_INDEX_KEYS: '' },
  });
  expect(stdout).toContain('Searched with where: { email: "  luna.rivera@EXAMPLE.com " }, normalised to "luna.rivera@example.com" before hashing:');
  expect(stdout).toContain('"email": "Luna.Rivera@Example.com"');
  expect(stdout).toMatch(/Searched with where: \{ sunSign: "leo" \}.*"birthPlace":"Lagos"/);
  // A person forgotten: her values are under her own key (scope s), unreadable once it is destroyed.
  expect(stdout).toMatch(/Mira's row under her own key \(scope s in the envelope\): \{"name":"pce:v2:s:s:[A-Za-z0-9_-]{22}:/);
  expect(stdout).toContain('Readings on love, two people, one key load: [["Mira Sol","The Moon in your seventh house."],["Tomás","Saturn returns."]]');
  expect(stdout).toContain("Reading Mira now: DecryptionError reason 'subject-erased'");
  expect(stdout).toContain('With onErasedSubject: null: {"name":null,"birthDate":null}');
  expect(stdout).toContain('Tomás is untouched: {"name":"Tomás"}');
  expect(stdout).toContain('Writing for Mira again: SubjectErasedError');
  // The typed fields: found by a DateTime at another offset, read back as a Date and a Json object, NULL at rest beside their ciphertext.
  expect(stdout).toContain('Searched with where: { bornAt: "1990-03-21T04:45:00-03:00" } (a DateTime, compared in UTC):');
  expect(stdout).toContain('bornAt is a Date: 1990-03-21T07:45:00.000Z');
  // Keys come back in the canonical (sorted) order, as jsonb reorders them too.
  expect(stdout).toContain('chart is a Json object: {"ascendant":"Gemini","houses":[{"house":10,"sign":"Aquarius"}],"moon":"Scorpio","sun":"Aries"}');
  const stored = JSON.parse(stdout.slice(stdout.indexOf('{', stdout.indexOf('The chart as stored'))).split('\n}')[0] + '\n}') as Record<string, unknown>;
  expect(stored).toEqual({ bornAt: null, chart: null, bornAtCipher: expect.stringMatching(/^pce:v2:t:k:/), chartCipher: expect.stringMatching(/^pce:v2:j:k:/) });
  expect(JSON.stringify(stored)).not.toMatch(/Aries|Scorpio|1990/);
});
