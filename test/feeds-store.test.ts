/**
 * Feed import through the service into PostgreSQL, on both backends: Exchange rows stored as observations
 * with the knowledge base's verdicts beside the feed's tags, provenance per row, duplicates stored once (the
 * same content, and the same (feed, type, ip, port, date) in another file), the quarantine with raw lines, a
 * rejected file changing nothing, .gz, .zip and stdin inputs, and `tocsin reassess` seeing feed observations.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { sql } from 'kysely';
import { importFeeds, type FileResult } from '../src/services/ingest.js';
import { openPortAddresses, quarantineRecords } from '../src/platform/db/feed-store.js';
import { reassess } from '../src/services/reassess.js';
import { productRuntimes } from '../src/products/registry.js';
import type { Database } from '../src/platform/db/connect.js';
import { testEachBackend } from './helpers/db.js';

const FIX = fileURLToPath(new URL('./fixtures/feeds/', import.meta.url));
const f = (n: string): string => join(FIX, n);
const products = productRuntimes();

async function counts(database: Database): Promise<Record<string, number>> {
  const r = await sql<Record<string, number>>`
    SELECT (SELECT count(*)::int FROM feed_imports) AS imports, (SELECT count(*)::int FROM feed_observations) AS rows,
           (SELECT count(*)::int FROM observations) AS observations, (SELECT count(*)::int FROM assessments) AS assessments,
           (SELECT count(*)::int FROM feed_quarantine) AS quarantine`.execute(database.db);
  return r.rows[0] ?? {};
}

function pick(r: FileResult): unknown[] {
  return [r.status, r.rowsRead, r.imported, r.duplicate, r.quarantined];
}

/** Minimal stored-ZIP writer (method 0) for the test: two members. */
function zip(members: ReadonlyArray<readonly [string, Buffer]>): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  const crcTable = Array.from({ length: 256 }, (_v, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (b: Buffer): number => {
    let c = 0xffffffff;
    for (const x of b) c = (crcTable[(c ^ x) & 0xff] as number) ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  for (const [name, data] of members) {
    const n = Buffer.from(name);
    const crc = crc32(data);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0); lh.writeUInt16LE(20, 4); lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(data.length, 18); lh.writeUInt32LE(data.length, 22); lh.writeUInt16LE(n.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0); ch.writeUInt16LE(20, 4); ch.writeUInt16LE(20, 6); ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(data.length, 20); ch.writeUInt32LE(data.length, 24); ch.writeUInt16LE(n.length, 28); ch.writeUInt32LE(offset, 42);
    locals.push(lh, n, data);
    central.push(ch, n);
    offset += 30 + n.length + data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(members.length, 8); end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

testEachBackend('Shadowserver scan_exchange: rows assessed by the knowledge base, provenance kept, bad rows quarantined, duplicates stored once', async ({ database }) => {
  const db = database.db;
  const [first] = await importFeeds([f('2024-06-03-scan_exchange-example-asn.csv')], { db, products });
  assert.deepEqual(pick(first as FileResult), ['imported', 6, 4, 0, 2]);
  // Per row: the feed's claim beside our verdicts (an Exchange 2016 CU23 is vulnerable whatever its SU is not known).
  const r = await sql<{ ip: string; port: number; reported_cves: string[]; compromised: boolean; vulnerable: string[]; indeterminate: string[]; source: string; build: string | null; build_precision: string | null; line: number; file: string; report_date: string; kb_revision: string | null }>`
    SELECT host(f.ip) AS ip, f.port, f.reported_cves, f.compromised, a.vulnerable, a.indeterminate, o.source, o.build, o.build_precision,
           f.line, i.file, f.report_date::text AS report_date, a.kb_revision
    FROM feed_observations f JOIN feed_imports i ON i.id = f.import_id
    JOIN observations o ON o.id = f.observation_id JOIN assessments a ON a.observation_id = o.id
    ORDER BY f.line`.execute(db);
  assert.deepEqual(r.rows.map((x) => [x.ip, x.line, x.source, x.build, x.build_precision, x.report_date]), [
    ['192.0.2.10', 2, 'feed:shadowserver', '15.1.2176', 'cu', '2024-06-03'],
    ['192.0.2.11', 3, 'feed:shadowserver', '15.0.1497', 'cu', '2024-06-03'],
    ['2001:db8::25', 4, 'feed:shadowserver', '15.2.721', 'cu', '2024-06-03'],
    ['198.51.100.7', 7, 'feed:shadowserver', '15.2.1118', 'cu', '2024-06-03'],
  ]);
  const mail = r.rows[0];
  assert.deepEqual(mail?.reported_cves, ['CVE-2021-26855', 'CVE-2021-27065']);
  assert.ok(mail !== undefined && mail.vulnerable.length + mail.indeterminate.length > 0, 'our knowledge base judged the build');
  assert.ok([...(mail?.vulnerable ?? []), ...(mail?.indeterminate ?? [])].includes('CVE-2021-26855'), 'a CU-level 2016 CU19 build has the ProxyLogon CVE open or undecided');
  assert.equal(mail?.kb_revision, products[0]?.kb.version);
  assert.ok(mail?.file.endsWith('2024-06-03-scan_exchange-example-asn.csv'));
  assert.equal(r.rows[1]?.compromised, true);

  const q = [];
  for await (const x of quarantineRecords(db)) q.push(x);
  assert.deepEqual(q.map((x) => [x.line, x.error]), [[5, 'bad IP address "192.0.2.300"'], [6, 'bad port "99999"']]);
  assert.ok(q[0]?.raw.includes('"192.0.2.300"'));
  assert.ok(q[0]?.file.endsWith('.csv'));

  // The same file again: the same content, nothing stored.
  const before = await counts(database);
  const [again] = await importFeeds([f('2024-06-03-scan_exchange-example-asn.csv')], { db, products });
  assert.equal(again?.status, 'duplicate-report');
  assert.equal(again?.sameAs, first?.importId);
  assert.deepEqual(await counts(database), before);
  // The report redelivered with one more row: known rows are duplicates, the new one is imported.
  const [re] = await importFeeds([f('2024-06-03-scan_exchange-example-asn-redelivered.csv')], { db, products });
  assert.deepEqual(pick(re as FileResult), ['imported', 7, 1, 4, 2]);
  const after = await counts(database);
  assert.equal(after.rows, (before.rows ?? 0) + 1);
  assert.equal(after.observations, (before.observations ?? 0) + 1);
  assert.equal(after.assessments, (before.assessments ?? 0) + 1);

  // Feed observations are observations: reassess judges them with the same knowledge base and finds nothing new.
  const s = await reassess({ db, products });
  assert.equal(s.observations, 5);
  assert.equal(s.changed, 0);
  assert.equal(s.written, 0);
});

testEachBackend('a file missing a required column changes nothing; the other files of the command are imported', async ({ database }) => {
  const db = database.db;
  const before = await counts(database);
  const results = await importFeeds([f('2024-06-05-scan_exchange-no-port.csv'), f('2024-06-04-scan_exchange-reordered.csv'), f('nmap-entities.xml')], { db, products });
  assert.deepEqual(results.map((r) => [r.status, r.error?.code ?? null]), [['rejected', 'TOCSIN_FEED_REJECTED'], ['imported', null], ['rejected', 'TOCSIN_FEED_REJECTED']]);
  assert.match(results[0]?.error?.message ?? '', /required column\(s\) missing: port/);
  const after = await counts(database);
  assert.deepEqual(after, { ...before, imports: 1, rows: 3, observations: 3, assessments: 3 });
});

testEachBackend('gz, zip (with a gz member), folders and stdin; port scanners give targets', async ({ database }) => {
  const db = database.db;
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-feeds-'));
  try {
    writeFileSync(join(dir, '2024-06-04-scan_exchange-reordered.csv.gz'), gzipSync(readFileSync(f('2024-06-04-scan_exchange-reordered.csv'))));
    writeFileSync(join(dir, 'scans.zip'), zip([
      ['nmap-example.xml', readFileSync(f('nmap-example.xml'))],
      ['sub/masscan.lst.gz', gzipSync(readFileSync(f('masscan-example.lst')))],
    ]));
    writeFileSync(join(dir, 'broken.gz'), Buffer.from('not gzip at all'));
    async function* stdin(): AsyncGenerator<Buffer> {
      yield readFileSync(f('zmap-example.csv'));
    }
    const results = await importFeeds([dir, '-'], { db, products, stdin: stdin() });
    assert.deepEqual(results.map((r) => [r.file.slice(dir.length + 1) || r.file, r.format, r.status, r.imported, r.quarantined]), [
      ['2024-06-04-scan_exchange-reordered.csv.gz', 'shadowserver', 'imported', 3, 0],
      ['broken.gz', null, 'rejected', 0, 0],
      ['scans.zip:nmap-example.xml', 'nmap-xml', 'imported', 2, 1],
      ['scans.zip:sub/masscan.lst.gz', 'masscan', 'imported', 2, 2],
      ['-', 'zmap', 'imported', 2, 2],
    ]);
    // The same report as plain CSV is the same content (hashed decompressed): stored once.
    const [plain] = await importFeeds([f('2024-06-04-scan_exchange-reordered.csv')], { db, products });
    assert.equal(plain?.status, 'duplicate-report');
    const targets: string[] = [];
    for await (const ip of openPortAddresses(db, 443)) targets.push(ip);
    assert.deepEqual(targets, ['192.0.2.10', '192.0.2.30', '192.0.2.50', '2001:db8::25', '2001:db8::51']);
    const all: string[] = [];
    for await (const ip of openPortAddresses(db, null, 2)) all.push(ip);
    assert.deepEqual(all, ['192.0.2.10', '192.0.2.30', '192.0.2.50', '2001:db8::25', '2001:db8::30', '2001:db8::51']);
    const sources = await sql<{ feed: string; n: number }>`SELECT feed, count(*)::int AS n FROM feed_observations GROUP BY feed ORDER BY feed`.execute(db);
    assert.deepEqual(sources.rows, [{ feed: 'masscan', n: 2 }, { feed: 'nmap', n: 2 }, { feed: 'shadowserver', n: 3 }, { feed: 'zmap', n: 2 }]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
