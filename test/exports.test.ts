/**
 * Exports (issue 10 §6). Pure: the MISP event (core format: required properties, attribute types and categories,
 * victims never `to_ids`, every address / CVE / web-shell path exactly once), the STIX 2.1 bundle (spec_version,
 * `type--uuid` ids, version-5 ids, TLP 2.0 marking definition with the official id, relationships pointing inside
 * the bundle, pattern syntax with quotes and backslashes escaped and read back), byte-identical re-exports, CSV
 * cells (formula guard, control characters stripped, RFC 4180 quoting) and JSONL lines. Then over HTTP on both
 * backends with data from the real services (exposures estate, a campaign, an incident with stage-1 indicators
 * and forensics-kit output): the four downloads for staff, 403 for an organisation account, 404 for an unknown id,
 * audit rows, and `GET /api/exposures?format=csv|jsonl` with every record, scoped for an organisation account.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { parseCsv } from '../src/core/csv.js';
import {
  buildMispEvent, buildStixBundle, csvLine, exportSource, filePattern, ipPattern, isUuid, jsonlLine, stixString, TLP2_MARKINGS,
  webShellPathOf, webShellsFromForensics, type ExportSource, type StixObject,
} from '../src/exports/index.js';
import { auditRows } from '../src/platform/db/account-store.js';
import { campaignMessages } from '../src/platform/db/campaign-store.js';
import { addUser, createToken } from '../src/services/accounts.js';
import { createCampaign } from '../src/services/campaigns.js';
import { exportCampaign } from '../src/services/exports.js';
import { foldFindings } from '../src/services/findings.js';
import { addAttachment, addStage1, reportIncident, staffActor } from '../src/services/incidents.js';
import { buildApp } from '../src/web/app.js';
import { testEachBackend } from './helpers/db.js';
import { buildEstate, collect } from './helpers/exposures-estate.js';
import { cliEntry, ROOT } from './helpers/independent-estate/cli.js';

interface Run { readonly code: number | null; readonly stdout: string; readonly stderr: string }

function tocsin(args: readonly string[], env: Readonly<Record<string, string>>): Promise<Run> {
  const child = spawn(process.execPath, [...cliEntry().nodeArgs, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
  return new Promise((resolve) => child.on('close', (c) => resolve({ code: c, stdout: out, stderr: err })));
}

const SHELL_DIR = 'C:\\inetpub\\wwwroot\\aspnet_client\\sy\'stem_web';
const SHELL = `${SHELL_DIR}\\o'k.aspx`;

function sample(): ExportSource {
  return exportSource({
    kind: 'incident', id: 7, title: 'web shells <b>"quoted"</b>', created: new Date('2026-03-02T10:00:00.000Z'), modified: new Date('2026-03-03T11:00:00.000Z'),
    tlp: 'amber+strict', producer: 'CERT-Test',
    ips: [
      { ip: '192.0.2.70', cves: ['cve-2021-26855'], org: '=Evil Org' },
      { ip: '192.0.2.70', cves: ['CVE-2021-34473'], compromised: true },
      { ip: '2001:DB8::0:1', cves: ['CVE-2021-26855'] },
    ],
    cves: ['CVE-2021-27065'],
    files: [{ path: SHELL }, { path: '/owa/auth/x.aspx', sha256: 'A'.repeat(64) }, { path: SHELL }],
  });
}

/** Reads the string literals of a STIX comparison `path = '...'` list back (checks the escaping round-trips). */
function patternValues(pattern: string): Array<{ path: string; value: string }> {
  assert.ok(pattern.startsWith('[') && pattern.endsWith(']'), pattern);
  const out: Array<{ path: string; value: string }> = [];
  let i = 1;
  for (;;) {
    const m = /^([a-z0-9-]+:[A-Za-z0-9_.']+(?:'[A-Za-z0-9-]+')?) = '/.exec(pattern.slice(i));
    assert.ok(m !== null, `comparison at ${i} in ${pattern}`);
    i += m[0].length;
    let value = '';
    for (;;) {
      const c = pattern[i];
      assert.ok(c !== undefined, `unterminated string in ${pattern}`);
      if (c === '\\') {
        const n = pattern[i + 1];
        assert.ok(n === '\\' || n === '\'', `only \\\\ and \\' escapes: ${pattern}`);
        value += n;
        i += 2;
      } else if (c === '\'') {
        i++;
        break;
      } else {
        value += c;
        i++;
      }
    }
    out.push({ path: m[1] ?? '', value });
    if (pattern.slice(i) === ']') return out;
    assert.equal(pattern.slice(i, i + 5), ' AND ', pattern);
    i += 5;
  }
}

test('exportSource normalises: addresses canonical and merged, CVEs upper-case, paths once; invalid input refused', () => {
  const s = sample();
  assert.deepEqual(s.ips.map((i) => i.ip), ['192.0.2.70', '2001:db8::1']);
  assert.deepEqual(s.ips[0]?.cves, ['CVE-2021-26855', 'CVE-2021-34473']);
  assert.equal(s.ips[0]?.compromised, true);
  assert.deepEqual(s.cves, ['CVE-2021-26855', 'CVE-2021-27065', 'CVE-2021-34473']);
  assert.deepEqual(s.files.map((f) => f.path), ['/owa/auth/x.aspx', SHELL]);
  assert.equal(s.files[0]?.sha256, 'a'.repeat(64));
  assert.throws(() => exportSource({ kind: 'campaign', id: 1, title: 't', created: new Date(), ips: [{ ip: '999.1.1.1' }] }), /TOCSIN_ARG_INVALID|not an IP/);
  assert.throws(() => exportSource({ kind: 'campaign', id: 1, title: 't', created: new Date(), ips: [], cves: ['CVE-21-1'] }), /not a CVE/);
});

test('MISP event: core format, victims not to_ids, every address, CVE and web-shell path exactly once, deterministic', () => {
  const doc = buildMispEvent(sample());
  const e = doc.Event;
  for (const k of ['uuid', 'info', 'date', 'threat_level_id', 'analysis', 'distribution', 'timestamp', 'Orgc', 'Tag', 'Attribute'] as const) assert.ok(k in e, k);
  assert.ok(isUuid(e.uuid, 5), e.uuid);
  assert.equal(e.date, '2026-03-02');
  assert.equal(e.timestamp, String(Date.parse('2026-03-03T11:00:00.000Z') / 1000));
  assert.equal(e.threat_level_id, '1', 'web shells found: high');
  assert.equal(e.distribution, '1', 'amber+strict: this community only');
  assert.deepEqual(e.Tag, [{ name: 'tlp:amber+strict' }]);
  assert.match(e.info, /^Incident 7: web shells/);
  const of = (type: string): string[] => e.Attribute.filter((a) => a.type === type).map((a) => a.value);
  assert.deepEqual(of('ip-dst').sort(), ['192.0.2.70', '2001:db8::1']);
  assert.deepEqual(of('vulnerability').sort(), ['CVE-2021-26855', 'CVE-2021-27065', 'CVE-2021-34473']);
  assert.deepEqual(of('filename'), [SHELL]);
  assert.deepEqual(of('filename|sha256'), [`/owa/auth/x.aspx|${'a'.repeat(64)}`]);
  for (const a of e.Attribute) {
    assert.ok(isUuid(a.uuid, 5));
    assert.equal(a.distribution, '5');
    assert.equal(a.to_ids, a.type.startsWith('filename'), `${a.type}: only web shells are to_ids`);
    assert.equal(a.category, a.type === 'ip-dst' ? 'Network activity' : a.type === 'vulnerability' ? 'External analysis' : 'Payload installation');
  }
  assert.equal(new Set(e.Attribute.map((a) => a.uuid)).size, e.Attribute.length, 'attribute uuids are distinct');
  assert.equal(JSON.stringify(buildMispEvent(sample())), JSON.stringify(doc), 'a re-export is identical');
  const later = buildMispEvent({ ...sample(), id: 8 });
  assert.notEqual(later.Event.uuid, e.uuid, 'another incident: another event uuid');
});

test('STIX 2.1 bundle: ids, spec_version, TLP 2.0 marking, patterns escaped, references inside the bundle, deterministic', () => {
  const b = buildStixBundle(sample());
  assert.equal(b.type, 'bundle');
  assert.match(b.id, /^bundle--[0-9a-f-]{36}$/);
  assert.ok(!('spec_version' in b), 'a 2.1 bundle has no spec_version');
  const ids = new Set(b.objects.map((o) => o.id));
  assert.equal(ids.size, b.objects.length, 'ids are unique');
  const identity = b.objects.find((o) => o.type === 'identity');
  assert.ok(identity !== undefined);
  assert.equal(identity['name'], 'CERT-Test');
  const marking = b.objects.find((o) => o.type === 'marking-definition');
  assert.equal(marking?.id, 'marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003');
  assert.equal(TLP2_MARKINGS['amber+strict'], marking?.id);
  assert.deepEqual(marking?.['extensions'], { 'extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d': { extension_type: 'property-extension', tlp_2_0: 'amber+strict' } });
  for (const o of b.objects) {
    assert.equal(o['spec_version'], '2.1', o.id);
    const m = /^([a-z0-9-]+)--([0-9a-f-]{36})$/.exec(o.id);
    assert.ok(m !== null && m[1] === o.type, o.id);
    if (o.type !== 'marking-definition') assert.ok(isUuid(m[2] ?? '', 5), `${o.id} is a v5 uuid`);
    assert.match(String(o['created']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    if (o.type !== 'identity' && o.type !== 'marking-definition') {
      assert.equal(o['created_by_ref'], identity.id);
      assert.deepEqual(o['object_marking_refs'], [marking?.id]);
      assert.equal(o['created'], '2026-03-02T10:00:00.000Z');
      assert.equal(o['modified'], '2026-03-03T11:00:00.000Z');
    }
  }
  const indicators = b.objects.filter((o) => o.type === 'indicator');
  const byPattern = new Map<string, Array<{ path: string; value: string }>>();
  for (const ind of indicators) {
    assert.equal(ind['pattern_type'], 'stix');
    assert.equal(ind['pattern_version'], '2.1');
    assert.equal(ind['valid_from'], '2026-03-02T10:00:00.000Z');
    byPattern.set(String(ind['pattern']), patternValues(String(ind['pattern'])));
  }
  const values = [...byPattern.values()];
  assert.equal(values.filter((v) => v.some((c) => c.path === 'ipv4-addr:value' && c.value === '192.0.2.70')).length, 1);
  assert.equal(values.filter((v) => v.some((c) => c.path === 'ipv6-addr:value' && c.value === '2001:db8::1')).length, 1);
  // The hostile path: quote and backslashes escaped in the pattern and read back exactly.
  const shell = values.filter((v) => v.some((c) => c.path === 'file:name' && c.value === 'o\'k.aspx'));
  assert.equal(shell.length, 1, JSON.stringify(values));
  assert.equal(shell[0]?.find((c) => c.path === 'file:parent_directory_ref.path')?.value, SHELL_DIR);
  const hashed = values.find((v) => v.some((c) => c.path === 'file:name' && c.value === 'x.aspx'));
  assert.equal(hashed?.find((c) => c.path === 'file:hashes.\'SHA-256\'')?.value, 'a'.repeat(64));
  assert.equal(indicators.length, 4, 'two addresses, two files');
  const vulns = b.objects.filter((o) => o.type === 'vulnerability');
  assert.deepEqual(vulns.map((v) => v['name']).sort(), ['CVE-2021-26855', 'CVE-2021-27065', 'CVE-2021-34473']);
  for (const v of vulns) assert.deepEqual((v['external_references'] as Array<{ source_name: string; external_id: string }>).map((r) => [r.source_name, r.external_id]), [['cve', v['name']]]);
  const rels = b.objects.filter((o) => o.type === 'relationship');
  for (const r of rels) {
    assert.ok(ids.has(String(r['source_ref'])) && ids.has(String(r['target_ref'])), r.id);
    assert.ok(['related-to', 'indicates'].includes(String(r['relationship_type'])));
  }
  assert.equal(rels.filter((r) => r['relationship_type'] === 'related-to').length, 3, '192.0.2.70: two CVEs; 2001:db8::1: one');
  assert.equal(rels.filter((r) => r['relationship_type'] === 'indicates').length, 2, 'each web shell indicates the malware');
  const report = b.objects.find((o) => o.type === 'report') as StixObject;
  for (const ref of report['object_refs'] as string[]) assert.ok(ids.has(ref), ref);
  assert.equal(JSON.stringify(buildStixBundle(sample())), JSON.stringify(b), 'a re-export is identical');
});

test('STIX pattern strings escape backslashes and quotes only', () => {
  assert.equal(stixString('a\'b\\c'), '\'a\\\'b\\\\c\'');
  assert.equal(ipPattern('192.0.2.1'), '[ipv4-addr:value = \'192.0.2.1\']');
  assert.equal(ipPattern('2001:db8::1'), '[ipv6-addr:value = \'2001:db8::1\']');
  assert.equal(filePattern({ path: 'shell.aspx', sha256: null }), '[file:name = \'shell.aspx\']');
  assert.deepEqual(patternValues(filePattern({ path: '/a\\b/\'x\'.aspx', sha256: null })), [{ path: 'file:name', value: '\'x\'.aspx' }, { path: 'file:parent_directory_ref.path', value: '/a\\b' }]);
});

test('CSV lines: formula guard, hostile control characters stripped, RFC 4180 quoting; JSONL lines stay one line', () => {
  const line = csvLine(['=cmd|"/c calc"!A1', '+1', '-2', '@SUM(A1)', '\t=x', '\r=y', 'a\u202ebc\u200b', 'x,y', 'two\nlines', 'esc\u001b[31m', -1, true, null]);
  assert.ok(line.endsWith('\r\n'));
  const [row] = parseCsv(line);
  assert.deepEqual(row, ['\'=cmd|"/c calc"!A1', '\'+1', '\'-2', '\'@SUM(A1)', '\'=x', '\'=y', 'abc', 'x,y', 'two\nlines', 'esc[31m', '-1', 'true', '']);
  const j = jsonlLine({ org: 'a\u2028b\nc\u202e', n: 1 });
  assert.ok(j.endsWith('\n') && j.indexOf('\n') === j.length - 1, 'one line');
  assert.ok(!j.includes('\u2028') && !j.includes('\u202e'), 'separators and bidi escaped');
  assert.deepEqual(JSON.parse(j), { org: 'a\u2028b\nc\u202e', n: 1 }, 'the value is unchanged');
});

test('web-shell paths: from stage-1 indicators and forensics-kit JSONL, nothing else', () => {
  assert.equal(webShellPathOf(' C:\\inetpub\\wwwroot\\aspnet_client\\s.aspx '), 'C:\\inetpub\\wwwroot\\aspnet_client\\s.aspx');
  assert.equal(webShellPathOf('/owa/auth/Current/themes/x.ashx'), '/owa/auth/Current/themes/x.ashx');
  for (const no of ['203.0.113.9', 'evil.example', 'https://evil.example/x.aspx', 'C:\\Windows\\notepad.exe', '//host/x.aspx', 'a'.repeat(40)]) assert.equal(webShellPathOf(no), null, no);
  const kit = [
    JSON.stringify({ check: 'webshell-file-aspnet-client', cve: null, severity: 'critical', file: 'evidence.zip!/aspnet_client/s.aspx', line: null, time: null, clientIp: null, evidence: 'x' }),
    JSON.stringify({ check: 'webshell-content-chopper', cve: null, severity: 'critical', file: '/mnt/c/inetpub/wwwroot/owa/auth/y.aspx', line: null, time: null, clientIp: null, evidence: 'x' }),
    JSON.stringify({ check: 'webshell-request', cve: null, severity: 'high', file: 'u_ex210302.log', line: 12, time: null, clientIp: '203.0.113.9', evidence: 'GET /x.aspx' }),
    'not json', '{"broken":', '',
  ].join('\n');
  assert.deepEqual(webShellsFromForensics(kit), [{ path: '/aspnet_client/s.aspx', sha256: null }, { path: '/mnt/c/inetpub/wwwroot/owa/auth/y.aspx', sha256: null }]);
});

// ---------------------------------------------------------------------------------------------------------------
// Over HTTP, with data from the real services

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

async function serve(app: FastifyInstance): Promise<(path: string, bearer: string) => Promise<Answer>> {
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return async (path, bearer) => {
    const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${bearer}` } });
    return { status: res.status, headers: res.headers, text: await res.text() };
  };
}

const PASSWORD = 'correct horse battery staple';

testEachBackend('exports over HTTP and the CLI: campaign and incident MISP/STIX for staff, refused for organisations; exposures as CSV and JSONL', async ({ database, url }) => {
  const db = database.db;
  await buildEstate(database);
  await foldFindings(db);
  const campaign = await createCampaign(db, { name: 'ProxyLogon =cmd "x"', cves: ['CVE-2021-26855'], createdBy: 'tester', fromAddress: 'cert@cert.test' });
  // What the campaign warned about: the addresses frozen in its outbox.
  const warned = new Set<string>();
  for (const m of await campaignMessages(db, campaign.id)) for (const e of m.exposures as Array<{ ip: string }>) warned.add(e.ip);
  assert.ok(warned.size >= 2, `the campaign has exposures: ${[...warned].join(' ')}`);

  const analyst = staffActor('analyst@example.org');
  const inc = await reportIncident(db, analyst, {
    reporter: { name: 'Ana', role: 'IT lead', phone: '+49 30 1234567', email: 'ana@customer.example' },
    summary: 'web shell on OWA', types: ['web-shell'], detectedAt: '2026-03-02T09:30+01:00', ongoing: true, impact: { integrity: true }, tlp: 'RED',
    org: 'Customer GmbH', cves: ['CVE-2021-26855'],
  }, { via: 'staff' });
  await addStage1(db, analyst, inc.id, { indicators: [SHELL, '203.0.113.9', 'evil.example'], assets: ['mail01'], actionsTaken: 'isolated' });
  const kit = `${JSON.stringify({ check: 'webshell-file-auth-folder', cve: null, severity: 'critical', file: 'D:\\evidence\\owa\\auth\\errorEE.aspx', line: null, time: null, clientIp: null, evidence: 'x' })}\n`;
  await addAttachment(db, analyst, inc.id, { filename: 'forensics.jsonl', content: Buffer.from(kit) });

  await addUser(db, { email: 'analyst@example.org', role: 'analyst', password: PASSWORD });
  await addUser(db, { email: 'customer@example.org', role: 'org', org: 'Customer GmbH', password: PASSWORD });
  const staff = (await createToken(db, 'analyst@example.org')).token;
  const cust = (await createToken(db, 'customer@example.org')).token;

  const app = await buildApp({ db });
  try {
    const get = await serve(app);
    // Campaign, MISP.
    const misp = await get(`/api/campaigns/${campaign.id}/misp.json`, staff);
    assert.equal(misp.status, 200, misp.text);
    assert.equal(misp.headers.get('content-disposition'), `attachment; filename="tocsin-campaign-${campaign.id}-misp.json"`);
    const event = (JSON.parse(misp.text) as { Event: { Attribute: Array<{ type: string; value: string }>; Tag: Array<{ name: string }>; info: string } }).Event;
    assert.deepEqual(event.Attribute.filter((a) => a.type === 'ip-dst').map((a) => a.value).sort(), [...warned].sort(), 'every warned address once');
    assert.deepEqual(event.Attribute.filter((a) => a.type === 'vulnerability').map((a) => a.value), ['CVE-2021-26855']);
    assert.deepEqual(event.Tag, [{ name: 'tlp:amber' }]);
    assert.equal(event.info, `Campaign ${campaign.id}: ProxyLogon =cmd "x"`, 'hostile text survives JSON exactly');
    // The same bytes twice, and the same as the service (CLI) builds.
    assert.equal((await get(`/api/campaigns/${campaign.id}/misp.json`, staff)).text, misp.text);
    assert.equal(`${JSON.stringify((await exportCampaign(db, campaign.id, 'misp')).document, null, 2)}\n`, misp.text);
    // Campaign, STIX, with a TLP override.
    const stix = await get(`/api/campaigns/${campaign.id}/stix.json?tlp=green`, staff);
    assert.equal(stix.status, 200, stix.text);
    assert.match(stix.headers.get('content-type') ?? '', /^application\/stix\+json/);
    const bundle = JSON.parse(stix.text) as { objects: StixObject[] };
    assert.ok(bundle.objects.some((o) => o.id === TLP2_MARKINGS.green));
    const patterns = bundle.objects.filter((o) => o.type === 'indicator').map((o) => String(o['pattern']));
    assert.deepEqual(patterns.map((p) => patternValues(p)[0]?.value).sort(), [...warned].sort());

    // Incident: linked findings' addresses, the report's CVE, web shells from stage 1 and from the kit's output.
    const istix = await get(`/api/incidents/${inc.id}/stix.json`, staff);
    assert.equal(istix.status, 200, istix.text);
    const iobjects = (JSON.parse(istix.text) as { objects: StixObject[] }).objects;
    assert.ok(iobjects.some((o) => o.id === TLP2_MARKINGS.red), 'the report\'s own TLP');
    const files = iobjects.filter((o) => o.type === 'indicator' && String(o['pattern']).startsWith('[file:')).map((o) => patternValues(String(o['pattern'])));
    assert.deepEqual(files.map((f) => f.find((c) => c.path === 'file:name')?.value).sort(), ['errorEE.aspx', 'o\'k.aspx'].sort());
    const imisp = await get(`/api/incidents/${inc.id}/misp.json`, staff);
    assert.equal(imisp.status, 200, imisp.text);
    const iattrs = (JSON.parse(imisp.text) as { Event: { Attribute: Array<{ type: string; value: string }>; distribution: string } }).Event;
    assert.equal(iattrs.distribution, '0', 'TLP:RED: this organisation only');
    assert.deepEqual(iattrs.Attribute.filter((a) => a.type === 'filename').map((a) => a.value).sort(), ['D:\\evidence\\owa\\auth\\errorEE.aspx', SHELL].sort());
    assert.ok(!iattrs.Attribute.some((a) => a.value === '203.0.113.9'), 'a reporter\'s indicator address is not exported as a victim');
    const linked = iattrs.Attribute.filter((a) => a.type === 'ip-dst').map((a) => a.value);
    assert.ok(linked.length >= 1 && linked.every((ip) => ip.startsWith('192.0.2.')), `the customer's linked findings: ${linked.join(' ')}`);

    // Refusals: an organisation account, an unknown id, a malformed id.
    const refused = await get(`/api/campaigns/${campaign.id}/misp.json`, cust);
    assert.equal(refused.status, 403);
    assert.equal((await get(`/api/incidents/${inc.id}/stix.json`, cust)).status, 403);
    assert.equal((await get('/api/campaigns/999999/stix.json', staff)).status, 404);
    assert.equal((await get('/api/incidents/999999/misp.json', staff)).status, 404);
    assert.equal((await get('/api/incidents/x1/misp.json', staff)).status, 400);
    const audit = await auditRows(db, 50);
    assert.ok(audit.some((a) => a.route === '/api/campaigns/:id/misp.json' && a.status === 403 && a.email === 'customer@example.org'), 'the denial is audited');
    assert.ok(audit.some((a) => a.route === '/api/incidents/:id/stix.json' && a.status === 200 && a.email === 'analyst@example.org'), 'the download is audited');

    // Exposures as CSV: a header and every record (all pages, not the first 100), formula-safe.
    const all = await collect(database);
    const csv = await get('/api/exposures?format=csv&limit=1', staff);
    assert.equal(csv.status, 200, csv.text);
    assert.match(csv.headers.get('content-type') ?? '', /^text\/csv/);
    assert.equal(csv.headers.get('content-disposition'), 'attachment; filename="exposures.csv"');
    const rows = parseCsv(csv.text);
    assert.equal(rows[0]?.[0], 'ip');
    assert.equal(rows.length - 1, all.length, 'every record, whatever limit says');
    assert.deepEqual(rows.slice(1).map((r) => `${r[0]}:${r[1]}`), all.map((r) => `${r.ip}:${r.port ?? ''}`));
    const orgCol = rows[0]?.indexOf('org') ?? -1;
    assert.ok(rows.some((r) => r[orgCol] === '\'=Evil Org'), 'a hostile organisation name is formula-guarded');
    assert.ok(!rows.some((r) => r[orgCol] === '=Evil Org'));
    // JSONL for the organisation account: only its own records, every one of them.
    const own = all.filter((r) => r.org === 'Customer GmbH');
    assert.ok(own.length >= 1 && own.length < all.length);
    const jsonl = await get('/api/exposures?format=jsonl', cust);
    assert.equal(jsonl.status, 200, jsonl.text);
    assert.match(jsonl.headers.get('content-type') ?? '', /^application\/x-ndjson/);
    const lines = jsonl.text.split('\n').filter((l) => l !== '');
    assert.deepEqual(lines.map((l) => (JSON.parse(l) as { ip: string }).ip), own.map((r) => r.ip));
    assert.equal((await get('/api/exposures?format=csv&org=%3DEvil%20Org', cust)).status, 403, 'another organisation: refused');
    assert.equal((await get('/api/exposures?format=xml', staff)).status, 400);
    // Without format: still one JSON page.
    const page = await get('/api/exposures?limit=1', staff);
    assert.equal((JSON.parse(page.text) as { items: unknown[] }).items.length, 1);
  } finally {
    await app.close();
  }

  // The CLI: the same documents (the service builds them), on stdout or into --output.
  const home = mkdtempSync(join(tmpdir(), 'tocsin-export-cli-'));
  try {
    const env = { TOCSIN_HOME: home, TOCSIN_DATABASE_URL: url };
    const out = join(home, 'incident.json');
    const [byCampaign, byExport, bad] = await Promise.all([
      tocsin(['campaign', 'export', String(campaign.id), '--format', 'misp'], env),
      tocsin(['export', 'incident', String(inc.id), '--format', 'stix', '--output', out], env),
      tocsin(['export', 'campaign', String(campaign.id), '--format', 'openioc'], env),
    ]);
    assert.equal(byCampaign.code, 0, byCampaign.stderr);
    assert.equal(byCampaign.stdout, `${JSON.stringify((await exportCampaign(db, campaign.id, 'misp')).document, null, 2)}\n`);
    assert.equal(byExport.code, 0, byExport.stderr);
    const written = JSON.parse(readFileSync(out, 'utf8')) as { type: string; objects: StixObject[] };
    assert.equal(written.type, 'bundle');
    assert.ok(written.objects.some((o) => o.type === 'indicator' && String(o['pattern']).includes('errorEE.aspx')));
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /TOCSIN_ARG_INVALID/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
