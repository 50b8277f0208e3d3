/**
 * The bulk refresh (src/services/attribute.ts over attribution-store.ts): the facts it folds from the sorted
 * observation rows must be the ones the single-address aggregates (`tocsin whois`) read, whatever page an
 * address's rows fall on; hostile text in evidence must survive COPY's text format; changed rows go through the
 * staging table with their owner changes.
 */
import assert from 'node:assert/strict';
import { sql, type Kysely } from 'kysely';
import { createAttributionStore } from '../src/platform/db/attribution-store.js';
import type { DbSchema } from '../src/platform/db/schema.js';
import { assignAddress, refreshAttributions, whoisAddress } from '../src/services/attribute.js';
import { testEachBackend } from './helpers/db.js';

/** What a note may hold: COPY's delimiters and escapes, JSON's, control characters, non-ASCII. */
const HOSTILE = 'a\\b\t"c"\n\r\\N d\\\\t ü 🙂 \u0007 =cmd|x';

async function seed(db: Kysely<DbSchema>): Promise<string[]> {
  await sql`INSERT INTO organisations (name, sector, layer, source) VALUES ('Net Org', 's', 'imported', 't'), ('Asn Org', 's', 'imported', 't'), ('Dom Org', 's', 'imported', 't')`.execute(db);
  const id = async (name: string): Promise<number> => (await sql<{ id: number }>`SELECT id FROM organisations WHERE name = ${name}`.execute(db)).rows[0]!.id;
  const [net, asn, dom] = [await id('Net Org'), await id('Asn Org'), await id('Dom Org')];
  await sql`INSERT INTO constituency_networks (org_id, network, text, layer, source) VALUES (${net}, '10.1.0.0/24', 't', 'imported', 't')`.execute(db);
  await sql`INSERT INTO constituency_asns (org_id, asn, layer, source) VALUES (${asn}, 64500, 'imported', 't')`.execute(db);
  await sql`INSERT INTO constituency_domains (org_id, domain, layer, source) VALUES (${dom}, 'dom.example', 'imported', 't')`.execute(db);
  // Per address, several scan rows (the newest with a hostname wins, an older certificate still counts) and feed
  // rows (the newest valid ASN cell wins: a newer 'n/a' cell does not count).
  const ips = ['10.1.0.5', '192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4', '192.0.2.5', '2001:db8::7'];
  for (const [n, ip] of ips.entries()) {
    await sql`
      INSERT INTO observations (source, ip, port, hostname, tls, tls_cert, scanned_at) VALUES
        ('scan', ${ip}::inet, 443, ${n % 2 === 0 ? `old${n}.elsewhere.example` : null}, true,
          ${n % 3 === 0 ? JSON.stringify({ subjectCn: `owa${n}.dom.example`, sans: [`owa${n}.dom.example`, 7] }) : null}::jsonb, '2026-01-01T00:00:00Z'),
        ('scan', ${ip}::inet, 443, ${n % 2 === 0 ? `new${n}.dom.example` : null}, true, NULL, '2026-01-02T00:00:00.123456Z'),
        ('scan', ${ip}::inet, 8443, NULL, false, NULL, '2026-01-01T12:00:00Z')`.execute(db);
  }
  await sql`INSERT INTO feed_imports (feed, format, file) VALUES ('shadowserver', 'shadowserver', 't.csv')`.execute(db);
  const imp = (await sql<{ id: number }>`SELECT max(id)::int AS id FROM feed_imports`.execute(db)).rows[0]!.id;
  for (const [n, ip] of ips.entries()) {
    if (n % 2 === 1) continue;
    await sql`
      INSERT INTO feed_observations (import_id, feed, kind, report_type, report_date, ip, port, hostname, fields, line, raw) VALUES
        (${imp}, 'shadowserver', 'exchange', 'scan_exchange', '2026-01-01', ${ip}::inet, 443, NULL, '{"asn":"AS64500"}'::jsonb, ${n * 10 + 1}, 'r'),
        (${imp}, 'shadowserver', 'exchange', 'scan_exchange', '2026-01-03', ${ip}::inet, 443, ${`feed${n}.dom.example`}, '{"asn":"n/a"}'::jsonb, ${n * 10 + 2}, 'r')`.execute(db);
  }
  // An address seen only by a feed.
  await sql`
    INSERT INTO feed_observations (import_id, feed, kind, report_type, report_date, ip, port, hostname, fields, line, raw)
    VALUES (${imp}, 'shadowserver', 'exchange', 'scan_exchange', '2026-01-02', '198.51.100.9', 443, NULL, '{"asn":"64500"}'::jsonb, 99, 'r')`.execute(db);
  return [...ips, '198.51.100.9'];
}

testEachBackend('attribution refresh: pages of any size give the answers whois computes; hostile text survives COPY', async ({ database }) => {
  const db = database.db;
  const ips = await seed(db);
  // Three rows a page: every address's rows straddle a page boundary somewhere.
  const first = await refreshAttributions(db, { pageSize: 3 });
  assert.deepEqual([first.considered, first.written, first.changed], [ips.length, ips.length, 0]);
  const store = createAttributionStore(db);
  const rules: string[] = [];
  for (const ip of ips) {
    const stored = await store.stored(ip);
    const w = await whoisAddress(db, { ip });
    assert.ok(stored !== null, ip);
    // The stored answer is the one computed from the single-address aggregates.
    assert.deepEqual([stored.orgId, stored.rule, stored.evidence, stored.tie], [w.attribution.orgId, w.attribution.rule, w.attribution.evidence, w.attribution.tie], ip);
    rules.push(`${ip}=${stored.rule ?? 'none'}`);
  }
  // The rules: network, the feed's ASN (its newest valid cell), a certificate name; IPv6 and a feed-only address.
  assert.deepEqual(rules, ['10.1.0.5=network', '192.0.2.1=none', '192.0.2.2=asn', '192.0.2.3=domain', '192.0.2.4=asn', '192.0.2.5=none', '2001:db8::7=asn', '198.51.100.9=asn']);
  // facts_until: the newest fact to the millisecond (scan time or import time), so nothing is stale afterwards.
  assert.equal((await refreshAttributions(db, { pageSize: 3 })).considered, 0);

  // A manual override with a hostile note: through the staging table (the row exists), with one owner change.
  const assigned = await assignAddress(db, { target: '192.0.2.1', org: 'Net Org', note: HOSTILE, who: 't' });
  assert.equal(assigned.refresh.changed, 1);
  assert.equal(assigned.attribution?.rule, 'manual');
  assert.equal((assigned.attribution?.evidence as { note?: string } | null)?.note, HOSTILE);
  assert.deepEqual((await store.changes('192.0.2.1')).map((c) => [c.fromOrg, c.toOrg, c.rule]), [[null, 'Net Org', 'manual']]);

  // A newer fact that does not change the answer: only the row's facts mark is written (staged as a touch).
  await sql`INSERT INTO observations (source, ip, port, tls, scanned_at) VALUES ('scan', '192.0.2.1', 25, false, now())`.execute(db);
  const full = await refreshAttributions(db, { full: true, pageSize: 2 });
  assert.deepEqual([full.considered, full.changed], [ips.length, 0]);
  assert.equal(full.written, 1, 'only the address with a newer fact gets its facts mark');
  assert.equal(((await store.stored('192.0.2.1'))?.evidence as { note?: string } | null)?.note, HOSTILE);
  const n = await sql<{ n: number }>`SELECT count(*)::int AS n FROM attributions`.execute(db);
  assert.equal(n.rows[0]?.n, ips.length);
});

/** The indexes and keys of `attributions` as the catalog defines them (what a first refresh drops and rebuilds). */
async function attributionIndexes(db: Kysely<DbSchema>): Promise<string[]> {
  const r = await sql<{ def: string }>`SELECT indexdef AS def FROM pg_indexes WHERE tablename = 'attributions' ORDER BY indexname`.execute(db);
  return r.rows.map((x) => x.def);
}

testEachBackend('attribution refresh: a first refresh rebuilds the indexes it drops, or keeps them when the table is busy; deleting an organisation unsets its answers', async ({ database }) => {
  const db = database.db;
  const ips = await seed(db);
  const indexes = await attributionIndexes(db);
  assert.equal(indexes.length, 3, 'primary key, organisation, unattributed');
  // A rebuilt index is a new relation: its oid tells whether the refresh dropped it.
  const oids = async (): Promise<string[]> =>
    (await sql<{ oid: string }>`SELECT indexrelid::oid::text AS oid FROM pg_index WHERE indrelid = 'attributions'::regclass ORDER BY 1`.execute(db)).rows.map((r) => r.oid);
  const before = await oids();

  // Another session reads the (empty) table in an open transaction: the refresh cannot drop the indexes (it
  // would wait for that session), so after its short lock timeout it writes with them in place.
  const busy = await db.transaction().execute(async (trx) => {
    await sql`SELECT count(*) FROM attributions`.execute(trx);
    return refreshAttributions(db, { pageSize: 2 });
  });
  assert.deepEqual([busy.considered, busy.written], [ips.length, ips.length]);
  assert.deepEqual(await attributionIndexes(db), indexes);
  assert.deepEqual(await oids(), before, 'the busy table kept its indexes');
  const kept = await sql<{ ip: string; org: number | null; rule: string | null }>`SELECT host(ip) AS ip, org_id::int AS org, rule FROM attributions ORDER BY ip`.execute(db);

  // Empty again: this first refresh drops the indexes, COPYs, and builds the same ones before COMMIT.
  await sql`TRUNCATE attributions`.execute(db);
  await sql`UPDATE attribution_watermark SET rev = 0`.execute(db);
  const first = await refreshAttributions(db, { pageSize: 3 });
  assert.deepEqual([first.considered, first.written], [ips.length, ips.length]);
  assert.deepEqual(await attributionIndexes(db), indexes);
  assert.ok((await oids()).every((o) => !before.includes(o)), 'every index was rebuilt');
  assert.deepEqual((await sql<{ ip: string; org: number | null; rule: string | null }>`SELECT host(ip) AS ip, org_id::int AS org, rule FROM attributions ORDER BY ip`.execute(db)).rows, kept.rows);
  // The primary key is back: a second row for an address is refused.
  await assert.rejects(sql`INSERT INTO attributions (ip, registry_rev) VALUES ('10.1.0.5', 1)`.execute(db), /duplicate key/);

  // Migration 0027 replaced the foreign key's ON DELETE SET NULL with a statement trigger: same effect.
  const net = (await sql<{ id: number }>`SELECT id::int AS id FROM organisations WHERE name = 'Net Org'`.execute(db)).rows[0]!.id;
  assert.ok(kept.rows.some((r) => r.org === net));
  await sql`DELETE FROM constituency_networks WHERE org_id = ${net}`.execute(db);
  await sql`DELETE FROM organisations WHERE id = ${net}`.execute(db);
  const left = await sql<{ n: number }>`SELECT count(*)::int AS n FROM attributions WHERE org_id = ${net}`.execute(db);
  assert.equal(left.rows[0]?.n, 0);
  assert.equal((await createAttributionStore(db).stored('10.1.0.5'))?.orgId, null);
});
