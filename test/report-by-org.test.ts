/**
 * `tocsin report --by org|sector` on both backends, over the estate of test/helpers/exposures-estate.ts (real
 * constituency import, Shadowserver import, scan store, attribution refresh): the counts per sector and per
 * organisation match what `tocsin exposures` lists (recomputed here independently from the records), the
 * unattributed addresses are a row of their own, and the rows add up to the whole picture. Also the CLI renderers:
 * CSV formula-safe, table sanitised.
 */
import assert from 'node:assert/strict';
import { parseCsv } from '../src/core/csv.js';
import { renderGroupReport } from '../src/cli/report-by.js';
import { buildGroupReport, type ExposureRecord, type GroupReport, type GroupReportRow } from '../src/services/exposures.js';
import { reportSubject } from '../src/services/report.js';
import { headlineGroups } from '../src/services/report-policy.js';
import { testEachBackend } from './helpers/db.js';
import { buildEstate, collect } from './helpers/exposures-estate.js';

const subject = reportSubject();
const groups = headlineGroups(subject.groups);
const headline = subject.groups.headline.map((h) => h.cve);

/** The report's definitions applied to the exposure records, written again here (not the code under test). */
function expected(records: readonly ExposureRecord[], label: (r: ExposureRecord) => string): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  const byLabel = new Map<string, ExposureRecord[]>();
  for (const r of records) byLabel.set(label(r), [...(byLabel.get(label(r)) ?? []), r]);
  for (const [l, rs] of byLabel) {
    const ips = (f: (r: ExposureRecord) => boolean): number => new Set(rs.filter(f).map((r) => r.ip)).size;
    const ex = rs.filter((r) => r.product === subject.id);
    const servers = new Set(ex.map((r) => r.ip));
    let vulnerable = 0;
    let indeterminate = 0;
    let patched = 0;
    const perGroup: Record<string, number> = {};
    for (const ip of servers) {
      const mine = ex.filter((r) => r.ip === ip);
      const v = mine.some((r) => r.vulnerable.some((c) => headline.includes(c)));
      const i = mine.some((r) => r.indeterminate.some((c) => headline.includes(c)));
      if (v) vulnerable++;
      else if (i) indeterminate++;
      else if (mine.some((r) => r.build !== null)) patched++;
      for (const g of groups) if (mine.some((r) => r.vulnerable.some((c) => g.cves.includes(c)))) perGroup[g.name] = (perGroup[g.name] ?? 0) + 1;
    }
    out.set(l, {
      addresses: ips(() => true), servers: servers.size, vulnerable, indeterminate, patched,
      compromised: ips((r) => r.compromised), reported: ips((r) => r.reportedCves.length > 0),
      ...Object.fromEntries(groups.map((g) => [`group:${g.name}`, perGroup[g.name] ?? 0])),
    });
  }
  return out;
}

function actual(report: GroupReport, label: (r: GroupReportRow) => string): Map<string, Record<string, number>> {
  return new Map(report.rows.map((r) => [label(r), {
    addresses: r.addresses, servers: r.servers, vulnerable: r.vulnerable, indeterminate: r.indeterminate, patched: r.patched,
    compromised: r.compromised, reported: r.reported, ...Object.fromEntries(r.byGroup.map((g) => [`group:${g.group}`, g.vulnerable])),
  }]));
}

testEachBackend('report --by sector and --by org: counts match the exposures, unattributed as its own row', async ({ database }) => {
  await buildEstate(database);
  const records = await collect(database);
  const deps = { now: () => new Date('2026-03-03T00:00:00Z') };

  const bySector = await buildGroupReport(database.db, 'sector', deps);
  assert.deepEqual(actual(bySector, (r) => (r.attributed ? r.sector ?? '(none)' : '(unattributed)')),
    expected(records, (r) => (r.org === null ? '(unattributed)' : r.sector ?? '(none)')));
  const health = bySector.rows.find((r) => r.sector === 'health');
  // Both health organisations' servers are vulnerable to ProxyLogon (our scan's verdicts).
  assert.equal(health?.servers, 2);
  assert.equal(health?.byGroup.find((g) => g.group === 'ProxyLogon')?.vulnerable, 2);
  assert.equal(bySector.rows.find((r) => r.sector === 'telecom')?.compromised, 1);
  const un = bySector.rows.find((r) => !r.attributed);
  assert.equal(un?.servers, 1);
  assert.equal(bySector.rows[bySector.rows.length - 1]?.attributed, false, 'the unattributed row comes last');
  // Every address is in exactly one row.
  assert.equal(bySector.total.addresses, new Set(records.map((r) => r.ip)).size);
  assert.equal(bySector.total.servers, 5);

  const byOrg = await buildGroupReport(database.db, 'org', deps);
  assert.deepEqual(actual(byOrg, (r) => r.org ?? '(unattributed)'), expected(records, (r) => r.org ?? '(unattributed)'));
  // Most vulnerable servers first, then most servers, then by name; unattributed last.
  assert.deepEqual(byOrg.rows.map((r) => [r.org, r.vulnerable, r.servers]), [['Example ISP', 1, 2], ['=Evil Org', 1, 1], ['Customer GmbH', 1, 1], [null, 1, 1]]);
  assert.equal(byOrg.rows.find((r) => r.org === 'Example ISP')?.servers, 2);
  assert.equal(byOrg.total.servers, bySector.total.servers);

  // CSV: the '=' organisation is neutralised; the table shows the unattributed row and a total.
  const csv = parseCsv(renderGroupReport(byOrg, 'csv'));
  assert.deepEqual(csv[0]?.slice(0, 8), ['attributed', 'org_id', 'org', 'sector', 'records', 'addresses', 'servers', 'vulnerable']);
  assert.ok(csv.some((row) => row[2] === "'=Evil Org"), JSON.stringify(csv));
  assert.ok(!csv.some((row) => row.some((c) => c.startsWith('='))));
  const table = renderGroupReport(bySector, 'table');
  assert.match(table, /^\(unattributed\)\s+1\s+1\s/m);
  assert.match(table, /^TOTAL\s+5\s+5\s/m);
  assert.equal(JSON.parse(renderGroupReport(bySector, 'json')).rows.length, bySector.rows.length);
});
