/**
 * Feed import in bulk, on both backends: a ~20,000-row Shadowserver report stored in many batches (each one
 * statement, the next parsed while the previous is stored) with bad rows and repeated rows scattered across
 * batch boundaries imports exactly (rows read / imported / duplicate / quarantined, and the same numbers in the
 * tables); hostile text (quotes, backslashes, tabs, braces, NUL, a quoted line break) is stored byte for byte;
 * a report that breaks after several batches were stored changes nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { sql } from 'kysely';
import { importFeeds } from '../src/services/ingest.js';
import { quarantineRecords } from '../src/platform/db/feed-store.js';
import { productRuntimes } from '../src/products/registry.js';
import type { Database } from '../src/platform/db/connect.js';
import { testEachBackend } from './helpers/db.js';

const products = productRuntimes();
const HEADER = 'timestamp,severity,ip,protocol,port,hostname,tag,asn,geo,region,city,naics,hostname_source,sector,version,servername,url';
const ROWS = 20_000;
const BUILDS = ['15.1.2176', '15.2.858', '15.0.1497', '15.2.1544', ''];

interface Expected {
  readonly text: string;
  readonly imported: number;
  readonly duplicate: number;
  readonly quarantined: readonly (readonly [number, string])[];
  readonly hostileLine: number;
  readonly hostileRaw: string;
}

/** A report whose every 613th row is bad and every 997th repeats an earlier row's key, with one hostile row. */
function report(): Expected {
  const out = [HEADER];
  const quarantined: Array<[number, string]> = [];
  let imported = 0;
  let duplicate = 0;
  const ip = (i: number): string => (i % 10 === 0 ? `2001:db8::${i.toString(16)}` : `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`);
  for (let i = 1; i <= ROWS; i++) {
    const line = out.length + 1;
    let addr = ip(i);
    let port = '443';
    if (i % 613 === 0) {
      if (i % 2 === 0) {
        addr = `10.0.0.${256 + i}`;
        quarantined.push([line, `bad IP address "${addr}"`]);
      } else {
        port = '70000';
        quarantined.push([line, 'bad port "70000"']);
      }
    } else if (i % 997 === 0) {
      addr = ip(i - 500); // the same (ip, port, date) as a row one or more batches earlier
      duplicate++;
    } else imported++;
    out.push(`"2024-06-07 01:02:03",critical,${addr},tcp,${port},mail${i}.example.org,"exchange;cve-2021-26855",64500,ZZ,R,C,517311,ptr,"Sector, one",${BUILDS[i % BUILDS.length]},EX${i},https://mail${i}.example.org/owa/`);
  }
  // Hostile text in one row: quotes, backslashes, a tab, braces, a NUL and a quoted line break (one record, two lines).
  const hostileLine = out.length + 1;
  const hostileRaw = '"2024-06-07 01:02:03",critical,192.0.2.250,tcp,443,"h\\o\tst{x}",exchange,64500,ZZ,R,C,1,ptr,"say ""hi"" \\N \u0000 {a,b}",15.1.2176,"two\nlines",u';
  out.push(hostileRaw);
  imported++;
  // A row with too many fields at the very end.
  out.push('"2024-06-07 01:02:03",critical,192.0.2.251,tcp,443,h,exchange,1,ZZ,R,C,1,ptr,s,15.1.2176,EX,u,extra');
  quarantined.push([hostileLine + 2, '18 field(s), the header has 17']);
  return { text: `${out.join('\n')}\n`, imported, duplicate, quarantined, hostileLine, hostileRaw };
}

async function counts(database: Database): Promise<Record<string, number>> {
  const r = await sql<Record<string, number>>`
    SELECT (SELECT count(*)::int FROM feed_imports) AS imports, (SELECT count(*)::int FROM feed_observations) AS rows,
           (SELECT count(*)::int FROM observations) AS observations, (SELECT count(*)::int FROM assessments) AS assessments,
           (SELECT count(*)::int FROM feed_quarantine) AS quarantine`.execute(database.db);
  return r.rows[0] ?? {};
}

testEachBackend('a 20,000-row report in many batches imports exactly: bad rows quarantined, repeats counted, hostile text kept', async ({ database }) => {
  const db = database.db;
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-feeds-bulk-'));
  try {
    const e = report();
    const file = join(dir, '2024-06-07-scan_exchange-bulk.csv');
    writeFileSync(file, e.text);
    const [r] = await importFeeds([file], { db, products, batchSize: 1500 });
    assert.ok(r !== undefined);
    assert.deepEqual([r.status, r.rowsRead, r.imported, r.duplicate, r.quarantined, r.skipped],
      ['imported', ROWS + 2, e.imported, e.duplicate, e.quarantined.length, 1]);
    assert.ok(e.duplicate > 10 && e.quarantined.length > 30, 'the report has bad and repeated rows in many batches');
    assert.deepEqual(await counts(database), { imports: 1, rows: e.imported, observations: e.imported, assessments: e.imported, quarantine: e.quarantined.length });

    const q = [];
    for await (const x of quarantineRecords(db)) q.push([x.line, x.error] as const);
    assert.deepEqual(q, e.quarantined);

    // Every stored row kept its line; the first of two rows with one key is the one stored.
    const lines = await sql<{ n: number; first: number; last: number; linked: number }>`
      SELECT count(DISTINCT line)::int AS n, min(line)::int AS first, max(line)::int AS last,
             count(*) FILTER (WHERE o.id IS NOT NULL AND a.observation_id IS NOT NULL)::int AS linked
      FROM feed_observations f LEFT JOIN observations o ON o.id = f.observation_id
      LEFT JOIN assessments a ON a.observation_id = o.id`.execute(db);
    assert.deepEqual(lines.rows[0], { n: e.imported, first: 2, last: e.hostileLine, linked: e.imported });
    const repeated = await sql<{ line: number }>`SELECT line FROM feed_observations WHERE ip = '10.0.1.241'::inet`.execute(db);
    assert.deepEqual(repeated.rows, [{ line: 498 }], 'row 497 (line 498) and its repeat at row 997 (another batch): the first is stored');

    const hostile = await sql<{ raw: string; hostname: string; sector: string; servername: string; source: string; verdicts: number }>`
      SELECT f.raw, f.hostname, f.fields->>'sector' AS sector, f.fields->>'servername' AS servername, o.source,
             cardinality(a.vulnerable) + cardinality(a.indeterminate) AS verdicts
      FROM feed_observations f JOIN observations o ON o.id = f.observation_id JOIN assessments a ON a.observation_id = o.id
      WHERE f.line = ${e.hostileLine}`.execute(db);
    const h = hostile.rows[0];
    assert.equal(h?.raw, e.hostileRaw.replace('\u0000', '\ufffd'), 'raw kept byte for byte (NUL, which PostgreSQL text cannot hold, as U+FFFD)');
    assert.equal(h?.hostname, 'h\\o\tst{x}');
    assert.equal(h?.sector, 'say "hi" \\N \ufffd {a,b}');
    assert.equal(h?.servername, 'two\nlines');
    assert.equal(h?.source, 'feed:shadowserver');
    assert.ok((h?.verdicts ?? 0) > 0, 'the hostile row was judged like the others');

    // The same rows as a .gz that breaks after several batches were stored: rejected, nothing stored.
    const before = await counts(database);
    const gz = gzipSync(Buffer.from(e.text.replaceAll('2024-06-07 01', '2024-06-08 01')));
    writeFileSync(join(dir, '2024-06-08-scan_exchange-bulk.csv.gz'), gz.subarray(0, gz.length - 200));
    const [broken] = await importFeeds([join(dir, '2024-06-08-scan_exchange-bulk.csv.gz')], { db, products, batchSize: 1500 });
    assert.equal(broken?.status, 'rejected');
    assert.equal(broken?.error?.code, 'TOCSIN_FEED_REJECTED');
    assert.deepEqual(await counts(database), before);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
