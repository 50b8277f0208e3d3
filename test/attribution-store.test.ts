/**
 * Stored attribution on both database backends (issue 8 §3): a refresh attributes stored scan observations (the
 * Host/SNI used, certificate SANs) and feed rows (ASN, hostname); a registry change re-attributes exactly the
 * affected addresses and appends an owner change; a refresh with nothing new writes nothing; an idempotent
 * constituency re-import bumps no revision; a manual assignment beats a network and survives a re-import; the
 * prefix-to-ASN table is used when a row has no ASN of its own; the review queue lists the unattributed and an
 * assignment takes an address off it. Observations are written by the real scan store and feed import.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql, type Kysely } from 'kysely';
import type { AttemptResult } from '../src/scan/ports.js';
import type { ScanRecord } from '../src/core/contracts/scan-record.js';
import { createScanStore } from '../src/platform/db/scan-store.js';
import { createConstituencyStore, type ConstituencyStore } from '../src/platform/db/constituency-store.js';
import { createAttributionStore, type ReviewRow } from '../src/platform/db/attribution-store.js';
import type { DbSchema } from '../src/platform/db/schema.js';
import { importConstituency, manualEntry } from '../src/services/constituency.js';
import { importFeeds } from '../src/services/ingest.js';
import {
  assignAddress,
  importPrefixTable,
  overrideTarget,
  parsePrefixLine,
  refreshAttributions,
  reviewQueue,
  unassignAddress,
  whoisAddress,
} from '../src/services/attribute.js';
import { testEachBackend } from './helpers/db.js';

const CONSTITUENCY = [
  'organisation,sector,networks,asns,domains,contact',
  'Example ISP,telecom,192.0.2.0/24,,,abuse@isp.example',
  'ASN Only AG,energy,,AS64502,,',
  'Domain Only GmbH,retail,,,example.org,',
  'Prefix AG,other,,AS64999,,',
].join('\n');

/** A Shadowserver scan_exchange report (the asn column is empty on the 203.0.113.5 row). */
const REPORT = [
  '"timestamp","ip","protocol","port","hostname","tag","asn","version"',
  '"2024-06-03 01:02:03","192.0.2.10","tcp",443,"mail.isp-customer.test","exchange;cve-2021-26855",64500,"15.1.2176"',
  '"2024-06-03 01:02:04","198.51.100.7","tcp",443,,"exchange",64502,"15.2.1118"',
  '"2024-06-03 01:02:05","203.0.113.5","tcp",443,,"exchange",,"15.2.1118"',
  '"2024-06-03 01:02:06","203.0.113.77","tcp",8443,"x.unknown.test","exchange",64510,"15.2.1118"',
].join('\n');

function answered(ip: string, hostname: string | null, sans: readonly string[], at: string): AttemptResult {
  const record: ScanRecord = {
    ip, port: 443, hostname, tls: true, product: 'ms-exchange', edition: 'Exchange Server 2016', build: '15.1.2176.2', buildPrecision: 'exact',
    cu: 'CU19', su: null, vulnerable: [], indeterminate: [], evidence: [], scannedAt: at, status: 200, notes: [],
  };
  return {
    ip, port: 443, hostname, outcome: 'answered', detail: null, record, facts: [], detectorRevisions: {},
    tlsCert: sans.length === 0 ? null : { subjectCn: sans[0] ?? null, sans, issuerCn: 'Example CA', validFrom: null, validTo: null, sha256: 'ab'.repeat(32) },
    attemptedAt: at,
  };
}

async function rev(db: Kysely<DbSchema>): Promise<number> {
  return createAttributionStore(db).registryRev();
}

async function count(db: Kysely<DbSchema>, table: 'attributions' | 'attribution_changes'): Promise<number> {
  const r = await sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql.table(table)}`.execute(db);
  return r.rows[0]?.n ?? -1;
}

async function owners(db: Kysely<DbSchema>): Promise<Record<string, string>> {
  const rows = await sql<{ ip: string; org: string | null; rule: string | null }>`
    SELECT host(a.ip) AS ip, o.name AS org, a.rule FROM attributions a LEFT JOIN organisations o ON o.id = a.org_id ORDER BY a.ip`.execute(db);
  return Object.fromEntries(rows.rows.map((r) => [r.ip, r.org === null ? 'none' : `${r.org}/${r.rule ?? ''}`]));
}

async function review(db: Kysely<DbSchema>): Promise<ReviewRow[]> {
  const out: ReviewRow[] = [];
  for await (const r of (await reviewQueue(db)).rows) out.push(r);
  return out;
}

async function importCsv(store: ConstituencyStore, text: string): Promise<void> {
  await importConstituency(store, { files: [{ name: 'orgs.csv', bytes: new TextEncoder().encode(`${text}\n`) }], format: 'auto', who: 'tester' });
}

testEachBackend('attribution store: refresh, re-attribution on registry change, prefix table, manual assignment, review queue', async ({ database }) => {
  const db = database.db;
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-attr-'));
  try {
    const constituency = createConstituencyStore(db);
    await importCsv(constituency, CONSTITUENCY);
    const reportFile = join(dir, '2024-06-03-scan_exchange-attr.csv');
    writeFileSync(reportFile, `${REPORT}\n`);
    const fed = await importFeeds([reportFile], { db });
    assert.equal(fed[0]?.imported, 4);
    const scans = createScanStore(db);
    const scan = await scans.createScan({ targets: ['2001:db8::25', 'mail.example.org=198.18.0.9'], ports: [443], options: {} });
    await scans.recordBatch(scan.id, [
      answered('2001:db8::25', null, ['owa.example.org', 'autodiscover.example.org'], '2026-03-02T10:00:00.000Z'),
      answered('198.18.0.9', 'mail.example.org', [], '2026-03-02T10:00:01.000Z'),
    ]);

    // First refresh: every observed address gets a row; a first answer is not an owner change.
    const first = await refreshAttributions(db);
    assert.equal(first.considered, 6);
    assert.equal(first.attributed, 4);
    assert.equal(first.unattributed, 2);
    assert.equal(first.changed, 0);
    assert.equal(first.registryRev, await rev(db));
    assert.deepEqual(await owners(db), {
      '192.0.2.10': 'Example ISP/network',
      '198.18.0.9': 'Domain Only GmbH/domain',
      '198.51.100.7': 'ASN Only AG/asn',
      '203.0.113.5': 'none',
      '203.0.113.77': 'none',
      '2001:db8::25': 'Domain Only GmbH/domain',
    });
    const store = createAttributionStore(db);
    const cert = await store.stored('2001:db8::25');
    assert.equal((cert?.evidence as { hostnameSource?: string } | null)?.hostnameSource, 'cert-san');
    const host = await store.stored('198.18.0.9');
    assert.equal((host?.evidence as { hostnameSource?: string } | null)?.hostnameSource, 'request-host');
    assert.equal(await count(db, 'attribution_changes'), 0);

    // Nothing changed: nothing considered, nothing written.
    const stamp = (await store.stored('192.0.2.10'))?.attributedAt;
    const second = await refreshAttributions(db);
    assert.deepEqual([second.considered, second.changed, second.registryRev], [0, 0, first.registryRev]);
    assert.equal((await store.stored('192.0.2.10'))?.attributedAt, stamp, 'the row was not rewritten');

    // The same constituency file again: no registry revision, no work.
    await importCsv(constituency, CONSTITUENCY);
    assert.equal(await rev(db), first.registryRev);
    assert.equal((await refreshAttributions(db)).considered, 0);

    // A more specific network of another organisation: only 192.0.2.10 changes owner, with one change row.
    await constituency.addOrg('Customer Ltd', {}, 'tester');
    await constituency.addEntry('Customer Ltd', manualEntry('network', { value: '192.0.2.8/29' }, new Date()), 'tester');
    const third = await refreshAttributions(db);
    assert.ok(third.registryRev > first.registryRev);
    assert.equal(third.changed, 1);
    assert.equal((await owners(db))['192.0.2.10'], 'Customer Ltd/network');
    const changes = await store.changes('192.0.2.10');
    assert.deepEqual(changes.map((c) => [c.fromOrg, c.toOrg, c.rule, c.registryRev]), [['Example ISP', 'Customer Ltd', 'network', third.registryRev]]);
    assert.equal(await count(db, 'attribution_changes'), 1);
    // Unchanged answers are not rewritten (migration 0014): the watermark says every row was answered at the new revision.
    const stale = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM attributions WHERE greatest(registry_rev, (SELECT rev FROM attribution_watermark)) <> ${third.registryRev}`.execute(db);
    assert.equal(stale.rows[0]?.n, 0, 'every row carries the new revision');
    const rewritten = await sql<{ n: number }>`SELECT count(*)::int AS n FROM attributions WHERE registry_rev = ${third.registryRev}`.execute(db);
    assert.equal(rewritten.rows[0]?.n, 1, 'only the row whose owner changed was rewritten');

    // Prefix table: it attributes the row without an ASN; a row's own ASN beats it (198.51.100.7 stays with its feed ASN).
    assert.deepEqual(parsePrefixLine('203.0.113.0/25\tAS64999  # pyasn'), { prefix: '203.0.113.0/25', asn: 64999 });
    assert.deepEqual(parsePrefixLine('203.0.113.0/25,64999'), { prefix: '203.0.113.0/25', asn: 64999 });
    assert.equal(parsePrefixLine('; IP-ASN32-DAT file'), null);
    assert.match(JSON.stringify(parsePrefixLine('203.0.113.1/25 64999')), /host bits set/);
    const table = ['# routing table', '203.0.113.0/26 64999', 'not a line', '::ffff:198.51.100.0/120\t64999'];
    const imported = await importPrefixTable(db, table, 'rv');
    assert.deepEqual([imported.rows, imported.added, imported.bad.map((b) => b.line)], [2, 2, [3]]);
    const prefixed = await refreshAttributions(db);
    assert.equal(prefixed.changed, 1);
    assert.equal((await owners(db))['203.0.113.5'], 'Prefix AG/asn');
    assert.equal(((await store.stored('203.0.113.5'))?.evidence as { via?: string } | null)?.via, 'prefix-table');
    assert.equal((await owners(db))['203.0.113.77'], 'none');
    assert.equal((await owners(db))['198.51.100.7'], 'ASN Only AG/asn');
    // The same table again changes nothing (no revision bump).
    const revBefore = await rev(db);
    const again = await importPrefixTable(db, table, 'rv');
    assert.deepEqual([again.added, again.changed, again.removed], [0, 0, 0]);
    assert.equal(await rev(db), revBefore);

    // Review: the unattributed address with its ports, hostname and feed ASN.
    const queue = await review(db);
    assert.deepEqual(queue.map((r) => [r.ip, r.kind, r.ports, r.hostnames, r.feedAsn]), [['203.0.113.77', 'unattributed', [8443], ['x.unknown.test'], 64510]]);
    assert.ok(queue[0]?.firstSeen !== null && queue[0]?.lastSeen !== null);

    // Assigning it creates a manual entry and takes it off the queue.
    const assigned = await assignAddress(db, { target: '203.0.113.77', org: 'domain only gmbh', note: 'phoned them', who: 'alice' });
    assert.deepEqual([assigned.override.target, assigned.override.createdBy, assigned.attribution?.org, assigned.attribution?.rule], ['203.0.113.77/32', 'alice', 'Domain Only GmbH', 'manual']);
    assert.deepEqual(await review(db), []);
    assert.deepEqual((await store.changes('203.0.113.77')).map((c) => [c.fromOrg, c.toOrg, c.rule]), [[null, 'Domain Only GmbH', 'manual']]);
    await assert.rejects(assignAddress(db, { target: '203.0.113.77', org: 'Nobody', who: 'alice' }), { code: 'TOCSIN_ORG_NOT_FOUND' });
    await assert.rejects(assignAddress(db, { target: '192.0.2.9/24', org: 'Prefix AG', who: 'alice' }), /host bits set: the network is 192\.0\.2\.0\/24/);

    // Manual beats network, and survives a re-import that does change the registry.
    await assignAddress(db, { target: '192.0.2.10', org: 'ASN Only AG', who: 'alice' });
    assert.equal((await owners(db))['192.0.2.10'], 'ASN Only AG/manual');
    const grown = CONSTITUENCY.replace('192.0.2.0/24', '192.0.2.0/23');
    const revImport = await rev(db);
    await importCsv(constituency, grown);
    assert.ok(await rev(db) > revImport, 'a real change bumps the revision');
    await refreshAttributions(db);
    assert.equal((await owners(db))['192.0.2.10'], 'ASN Only AG/manual');

    // whois: the stored facts (feed ASN, hostname) and the stored answer with its owner changes.
    const w = await whoisAddress(db, { ip: '192.0.2.10' });
    assert.equal(w.observed, true);
    assert.equal(w.facts.asn, 64500);
    assert.equal(w.facts.feedHostname, 'mail.isp-customer.test');
    assert.equal(w.attribution.orgName, 'ASN Only AG');
    assert.equal(w.stored?.org, 'ASN Only AG');
    assert.deepEqual(w.changes.map((c) => c.toOrg), ['ASN Only AG', 'Customer Ltd']);
    // A flag overrides the stored fact.
    assert.equal((await whoisAddress(db, { ip: '198.51.100.7', asn: 64999 })).attribution.orgName, 'Prefix AG');

    // Unassign: back to the network's organisation; a full refresh recomputes every address and changes nothing.
    await unassignAddress(db, '192.0.2.10/32');
    assert.equal((await owners(db))['192.0.2.10'], 'Customer Ltd/network');
    await assert.rejects(unassignAddress(db, '192.0.2.10'), { code: 'TOCSIN_ORG_ENTRY_NOT_FOUND' });
    const full = await refreshAttributions(db, { full: true });
    assert.deepEqual([full.considered, full.changed], [6, 0]);
    assert.equal(await count(db, 'attributions'), 6);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

testEachBackend('attribution store: newer facts about an address re-attribute it; refreshes run one at a time', async ({ database }) => {
  const db = database.db;
  const constituency = createConstituencyStore(db);
  await importCsv(constituency, CONSTITUENCY);
  const scans = createScanStore(db);
  const scan = await scans.createScan({ targets: ['198.18.0.20'], ports: [443], options: {} });
  await scans.recordBatch(scan.id, [answered('198.18.0.20', null, [], '2026-03-02T10:00:00.000Z')]);
  assert.equal((await refreshAttributions(db)).unattributed, 1);
  // A later scan sees a certificate naming the organisation's domain: the address is recomputed.
  const later = await scans.createScan({ targets: ['198.18.0.20'], ports: [443], options: {} });
  await scans.recordBatch(later.id, [answered('198.18.0.20', null, ['mail.example.org'], '2026-03-03T10:00:00.000Z')]);
  const r = await refreshAttributions(db);
  assert.deepEqual([r.considered, r.attributed, r.changed], [1, 1, 1]);
  assert.equal((await owners(db))['198.18.0.20'], 'Domain Only GmbH/domain');
  // Two refreshes at once: serialised, both succeed, and the second finds nothing to do.
  await scans.recordBatch(later.id, [answered('198.18.0.21', null, [], '2026-03-03T10:00:01.000Z')]);
  const both = await Promise.all([refreshAttributions(db), refreshAttributions(db)]);
  assert.deepEqual(both.map((b) => b.considered).sort(), [0, 1]);
  // Two organisations holding the same ASN: a tie, listed in the review queue as ambiguous with the loser.
  await importConstituency(constituency, {
    files: [{ name: 'twins.csv', bytes: new TextEncoder().encode('organisation,asns\nTwin One,AS64777\nTwin Two,AS64777\n') }], format: 'auto', who: 'tester',
  });
  await importPrefixTable(db, ['198.18.0.21/32 64777'], 'rv');
  const queue = await review(db);
  assert.deepEqual(queue.map((q) => [q.ip, q.kind, q.org]), [['198.18.0.21', 'ambiguous', 'Twin One']]);
  const losers = queue[0]?.candidates as readonly { orgName: string; lost: string }[];
  assert.deepEqual(losers.map((c) => [c.orgName, c.lost]), [['Twin Two', 'tie']]);
  assert.equal(overrideTarget('::ffff:192.0.2.0/120'), '192.0.2.0/24');
  assert.equal(overrideTarget('2001:DB8::1'), '2001:db8::1/128');
});
