/**
 * `tocsin constituency` and `tocsin org` as a user runs them (child process, the compiled CLI when built), on a
 * fresh database: a happy path (import, re-import, manual change, show, export), and bad inputs: a missing file
 * (nothing imported), a binary file (refused, the other sources imported, exit 65), bad rows (listed as
 * file:line with the raw line, the rest imported, exit 0), hostile text sanitised.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase, type FreshDatabase } from './helpers/db.js';
import { runCli } from './helpers/independent-estate/cli.js';

const FIX = join(import.meta.dirname, 'fixtures', 'constituency');
let dir: string;
let db: FreshDatabase;

// A suite, so its after() (dropping the database) runs before the db helper's root-level after() releases the
// shared embedded server.
describe('tocsin constituency and org through the compiled CLI', () => {
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tocsin-constituency-cli-'));
  db = await freshDatabase('embedded');
});

after(async () => {
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
});

async function tocsin(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const r = await runCli(args, { TOCSIN_HOME: join(dir, 'home'), TOCSIN_DATABASE_URL: db.url, DATABASE_URL: '' }, 90_000);
  return { code: r.code, out: r.stdout.toString('utf8'), err: r.stderr.toString('utf8') };
}

test('import, re-import, manual network, show and export through the CLI', { timeout: 240_000 }, async () => {
  const csv = join(FIX, 'orgs.csv');
  const first = await tocsin('constituency', 'import', csv, '--source', 'isp-list', '--as', 'ci');
  assert.equal(first.code, 0, first.err);
  assert.match(first.out, /orgs\.csv \(csv, source isp-list\): 8 rows read, 6 imported, 0 unchanged, 2 set aside, 5 problem\(s\)/);
  assert.match(first.out, /orgs\.csv:7: "203\.0\.113\.0\/33" is not a CIDR/);
  assert.match(first.out, /orgs\.csv:9: 3 fields, the header has 9/);
  assert.match(first.out, /^ {4},"Short Row",retail$/m, 'the raw line is shown');
  const second = await tocsin('constituency', 'import', csv, '--source', 'isp-list');
  assert.equal(second.code, 0, second.err);
  assert.match(second.out, /8 rows read, 0 imported, 6 unchanged/);
  assert.match(second.out, /source isp-list: organisations \+0 ~0 -0, entries \+0 ~0 -0/);

  const add = await tocsin('org', 'network', 'add', 'customer gmbh', '192.0.2.100 - 192.0.2.103', '--as', 'alice');
  assert.equal(add.code, 0, add.err);
  const show = await tocsin('org', 'show', 'Customer GmbH');
  assert.equal(show.code, 0, show.err);
  assert.match(show.out, /parent: +Example ISP/);
  assert.match(show.out, /192\.0\.2\.64\/26 +\[imported: isp-list\]/);
  assert.match(show.out, /192\.0\.2\.100\/30 +\(given as 192\.0\.2\.100 - 192\.0\.2\.103\) +\[manual\]/);

  const out = join(dir, 'export.csv');
  const exp = await tocsin('constituency', 'export', '--output', out);
  assert.equal(exp.code, 0, exp.err);
  const text = readFileSync(out, 'utf8');
  assert.match(text, /^organisation,sector,country,size,parent,networks,asns,domains,contact,abuse_contact,technical_contact\r\n/);
  assert.match(text, /\r\nCustomer GmbH,health,DE,,Example ISP,192\.0\.2\.64\/26; 192\.0\.2\.100 - 192\.0\.2\.103,,,security@customer\.example,,\r\n/);
  const audit = await tocsin('constituency', 'audit', '--format', 'jsonl', '--limit', '1');
  assert.equal((JSON.parse(audit.out.trim()) as { who: string }).who, 'alice');

  const list = await tocsin('org', 'list', '--format', 'csv');
  assert.equal(list.code, 0, list.err);
  assert.equal(list.out.trim().split('\r\n').length, 7, list.out);
});

test('bad inputs: a missing file imports nothing; a binary file is refused while the others go in; hostile names are sanitised', { timeout: 240_000 }, async () => {
  const good = join(dir, 'good.csv');
  writeFileSync(good, 'organisation,networks\nMissing File Test,198.18.0.0/24\n');
  const missing = await tocsin('constituency', 'import', good, join(dir, 'nope.csv'));
  assert.equal(missing.code, 66, missing.err);
  assert.match(missing.err, /TOCSIN_INPUT_UNREADABLE[\s\S]*nope\.csv: ENOENT/);
  assert.doesNotMatch((await tocsin('org', 'list')).out, /Missing File Test/);

  const bin = join(dir, 'contacts.xlsx');
  writeFileSync(bin, Buffer.from([0x50, 0x4b, 3, 4, 0x14, 0, 0, 0, 8, 0]));
  const refused = await tocsin('constituency', 'import', good, bin);
  assert.equal(refused.code, 65, refused.err);
  assert.match(refused.out, /contacts\.xlsx \(unreadable, source contacts\.xlsx\): refused: a zip archive/);
  assert.match(refused.err, /TOCSIN_CONSTITUENCY_FILE_REJECTED/);
  assert.match((await tocsin('org', 'list')).out, /Missing File Test/, 'the other source went in');

  const hostile = join(dir, 'hostile.csv');
  writeFileSync(hostile, 'organisation,networks\n"Evil\u001b[31mCorp",not-a-net\n');
  const h = await tocsin('constituency', 'import', hostile);
  assert.equal(h.code, 0, h.err);
  assert.doesNotMatch(h.out, /\u001b/);
  assert.match(h.out, /hostile\.csv:2: the organisation name "Evil\\u001b\[31mCorp" contains control or invisible characters: row set aside/);
  assert.match(h.out, /^ {4}"Evil\\x1b\[31mCorp",not-a-net$/m);

  const unknown = await tocsin('org', 'show', 'Nobody');
  assert.equal(unknown.code, 64);
  assert.match(unknown.err, /TOCSIN_ORG_NOT_FOUND/);
  const badFormat = await tocsin('constituency', 'import', good, '--format', 'xml');
  assert.equal(badFormat.code, 64);
});
});
