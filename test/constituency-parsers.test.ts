/**
 * The constituency import parsers (pure) against the fixtures in test/fixtures/constituency: what goes in,
 * what is set aside with file:line and the raw text, and the import plan's two-layer rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  parseConstituencyCsv,
  parseConstituencyJson,
  parseConstituencyRpsl,
  parseImport,
  splitRpsl,
  planImport,
  isEmptyPlan,
  recordItems,
  type CurrentItem,
  type CurrentOrg,
  type OrgRecord,
} from '../src/constituency/index.js';

const DIR = join(import.meta.dirname, 'fixtures', 'constituency');
const read = (name: string): string => readFileSync(join(DIR, name), 'utf8');
const byName = (records: readonly OrgRecord[], name: string): OrgRecord => {
  const r = records.find((x) => x.name === name);
  assert.ok(r, `${name} among ${records.map((x) => x.name).join(', ')}`);
  return r;
};

test('CSV by header name: BOM, CRLF, quoted commas, lists, ranges, IDN; bad values and rows reported with line and raw text', () => {
  const r = parseConstituencyCsv('orgs.csv', read('orgs.csv'));
  assert.deepEqual(r.rejected, []);
  assert.equal(r.rowsRead.get('orgs.csv'), 8);
  assert.deepEqual(r.records.map((x) => x.name), ['Example ISP', 'Customer GmbH', 'ASN Only AG', 'Domain Only e.V.', 'Range Corp', 'Bad Rows Inc']);
  const isp = byName(r.records, 'Example ISP');
  assert.deepEqual(isp.networks.map((n) => n.cidrs[0]), ['192.0.2.0/24', '2001:db8:100::/48']);
  assert.deepEqual(isp.asns.map((a) => a.asn), [64496]);
  assert.deepEqual(isp.contacts.map((c) => [c.role, c.email]), [['security', 'noc@example-isp.net']]);
  assert.equal(isp.country, 'DE');
  assert.equal(byName(r.records, 'Customer GmbH').parent, 'Example ISP');
  assert.deepEqual(byName(r.records, 'ASN Only AG').asns.map((a) => a.asn), [64500, 64501]);
  assert.deepEqual(byName(r.records, 'Domain Only e.V.').domains.map((d) => d.domain), ['xn--bcher-kva.example', 'shop.example.org']);
  const range = byName(r.records, 'Range Corp');
  assert.deepEqual(range.networks.map((n) => [n.cidrs[0], n.text]), [['198.51.100.0/26', '198.51.100.0 - 198.51.100.95'], ['198.51.100.64/27', '198.51.100.0 - 198.51.100.95']]);
  // The bad row keeps its good network; each bad value is one problem on line 7 with the raw line.
  const bad = byName(r.records, 'Bad Rows Inc');
  assert.deepEqual(bad.networks.map((n) => n.cidrs[0]), ['203.0.113.128/25']);
  const line7 = r.problems.filter((p) => p.line === 7);
  assert.equal(line7.length, 3);
  assert.ok(line7.every((p) => p.file === 'orgs.csv' && p.raw.startsWith(',Bad Rows Inc,retail,')));
  assert.match(line7.map((p) => p.error).join('\n'), /203\.0\.113\.0\/33[\s\S]*ASX1[\s\S]*not-an-email/);
  assert.match(r.problems.find((p) => p.line === 8)?.error ?? '', /name is empty: row set aside/);
  assert.match(r.problems.find((p) => p.line === 9)?.error ?? '', /3 fields, the header has 9/);
});

test('CSV without an organisation column is refused whole; rows of one organisation are merged, a contradiction reported', () => {
  const r = parseConstituencyCsv('x.csv', 'network,contact\n192.0.2.0/24,a@example.org\n');
  assert.equal(r.records.length, 0);
  assert.match(r.rejected[0]?.error ?? '', /no "organisation" column/);
  const m = parseConstituencyCsv('m.csv', 'organization,as_or_cidr,sector\nA,AS64496,health\na,192.0.2.0/24,energy\n');
  assert.equal(m.records.length, 1);
  assert.deepEqual(m.records[0]?.asns.map((a) => a.asn), [64496]);
  assert.deepEqual(m.records[0]?.networks.map((n) => n.cidrs[0]), ['192.0.2.0/24']);
  assert.equal(m.records[0]?.sector, 'health');
  assert.match(m.problems[0]?.error ?? '', /sector "energy" contradicts "health" given for "A" on line 2/);
  assert.equal(m.problems[0]?.line, 3);
});

test('JSON: {organisations: [...]} with contact objects; bad elements reported with the line they start on', () => {
  const r = parseConstituencyJson('orgs.json', read('orgs.json'));
  assert.deepEqual(r.rejected, []);
  assert.equal(r.rowsRead.get('orgs.json'), 3);
  const h = byName(r.records, 'Json Hospital');
  assert.deepEqual(h.contacts.map((c) => [c.role, c.email, c.language, c.pgp]), [
    ['security', 'cert@hospital.example', 'nl', '0123456789ABCDEF0123456789ABCDEF01234567'],
    ['security', 'abuse-desk@hospital.example', null, null],
  ]);
  assert.equal(byName(r.records, 'Json Clinic').parent, 'Json Hospital');
  assert.deepEqual(r.problems.map((p) => p.line), [15, 16, 16]);
  assert.match(r.problems.map((p) => p.error).join('\n'), /must be a JSON object[\s\S]*"boss"[\s\S]*10\.0\.0\.0\/8x/);
  assert.match(parseConstituencyJson('b.json', '{"organisations": [').rejected[0]?.error ?? '', /not valid JSON/);
  assert.match(parseConstituencyJson('b.json', '{"orgs": []}').rejected[0]?.error ?? '', /expected an array/);
  assert.equal(parseConstituencyJson('a.json', '[{"name":"A","networks":["192.0.2.0/24"]}]').records.length, 1);
});

test('RPSL split files: org, inetnum ranges, inet6num, aut-num, abuse-c roles, continuation and comments; --country', () => {
  const files = ['ripe.db.organisation', 'ripe.db.inetnum', 'ripe.db.inet6num', 'ripe.db.aut-num', 'ripe.db.role'].map((f) => ({ file: f, text: read(f) }));
  const r = parseConstituencyRpsl(files);
  assert.deepEqual(r.records.map((x) => x.name).sort(), ['Example Stadtwerke', 'Exemple Mairie']);
  const sw = byName(r.records, 'Example Stadtwerke');
  assert.equal(sw.country, 'DE');
  assert.deepEqual(sw.networks.map((n) => [n.cidrs[0], n.text, n.abuseMailbox]), [
    ['192.0.2.0/24', '192.0.2.0 - 192.0.2.255', 'netz-abuse@stadtwerke.example'],
    ['2001:db8:300::/48', '2001:db8:300::/48', null],
  ]);
  assert.deepEqual(sw.asns.map((a) => a.asn), [64520]);
  assert.deepEqual(sw.contacts.map((c) => [c.role, c.email]), [['abuse', 'abuse@stadtwerke.example']]);
  // The inetnum without org: and the unused organisation are skipped; the bad range and the malformed object are problems.
  assert.equal(r.skipped.get('ripe.db.inetnum'), 1);
  assert.equal(r.skipped.get('ripe.db.organisation'), 1);
  const descr = splitRpsl('ripe.db.inetnum', read('ripe.db.inetnum')).objects[0]?.attrs.get('descr');
  assert.deepEqual(descr, ['Example Stadtwerke, Hauptstrasse 1'], 'continuation line joined');
  assert.deepEqual(r.problems.map((p) => p.line).sort((a, b) => a - b), [18, 23]);
  assert.match(r.problems.find((p) => p.line === 18)?.raw ?? '', /^inetnum:\s+10\.0\.0\.0 - 10\.0\.0\.300/);
  const fr = parseConstituencyRpsl(files, { country: 'fr' });
  assert.deepEqual(fr.records.map((x) => x.name), ['Exemple Mairie']);
  assert.deepEqual(byName(fr.records, 'Exemple Mairie').asns.map((a) => a.asn), [64521]);
  assert.deepEqual(byName(fr.records, 'Exemple Mairie').networks.map((n) => n.cidrs[0]), ['198.51.100.0/25']);
});

test('import plan: the same input against the state it produced plans nothing; manual rows and other sources are never touched', () => {
  const parsed = parseImport([{ file: 'orgs.csv', text: read('orgs.csv'), format: 'csv' }]);
  const first = planImport('s', parsed.records, [], []);
  assert.equal(first.createOrgs.length, 6);
  // The state the first plan produces:
  const orgs: CurrentOrg[] = first.createOrgs.map((c, i) => ({ id: i + 1, name: c.name, layer: 'imported', source: 's', sector: c.attrs.sector, country: c.attrs.country, size: c.attrs.size, parentId: null }));
  const idOf = (lower: string): number => orgs.find((o) => o.name.toLowerCase() === lower)?.id ?? -1;
  const withParents = orgs.map((o) => {
    const p = first.createOrgs.find((c) => c.name === o.name)?.attrs.parent ?? null;
    return { ...o, parentId: p === null ? null : idOf(p) };
  });
  const items: CurrentItem[] = parsed.records.flatMap(recordItems).map((d, i) => ({ id: i + 1, orgId: idOf(d.org), kind: d.kind, key: d.key, value: d.value }));
  assert.ok(isEmptyPlan(planImport('s', parsed.records, withParents, items)));
  // A row gone from the file: its items go, its organisation is a removal candidate.
  const fewer = parsed.records.filter((r) => r.name !== 'Range Corp');
  const p2 = planImport('s', fewer, withParents, items);
  assert.deepEqual(p2.deleteOrgs.map((o) => o.name), ['Range Corp']);
  assert.equal(p2.deleteItems.length, 3);
  // Manual organisation of the same name: its attributes are not the import's to change.
  const manual = withParents.map((o) => (o.name === 'Example ISP' ? { ...o, layer: 'manual' as const, source: 'manual', sector: 'isp' } : o));
  assert.ok(isEmptyPlan(planImport('s', parsed.records, manual, items)));
  // Another source's import plans nothing against source s's rows.
  const other = planImport('t', [], withParents, []);
  assert.ok(isEmptyPlan(other));
});
