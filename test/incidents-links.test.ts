/**
 * Incident finishing touches (issue 10 §5-6), on both database backends, over real HTTP on 127.0.0.1:
 * - `GET /api/incidents?format=csv|jsonl` is the whole list (every page) and equals the JSON list read page by page;
 *   an organisation's download holds only its own reports, and a bad filter answers with its code (not a cut stream);
 * - links by hand (`POST /api/incidents/:id/links`, `tocsin incident link`) appear on the API, `incident show` and the
 *   report page; the organisation sees only links to its own things and never the internal note; organisation
 *   users get 403 on the link route (audited);
 * - /incidents/:id links the MISP and STIX exports; /incidents and /portal/incidents link the download with the filters.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { parseCsv } from '../src/core/csv.js';
import { auditRows } from '../src/platform/db/account-store.js';
import { createConstituencyStore } from '../src/platform/db/constituency-store.js';
import { listFindings } from '../src/platform/db/finding-store.js';
import { addUser, createToken } from '../src/services/accounts.js';
import { createCampaign } from '../src/services/campaigns.js';
import { csvLine } from '../src/services/exports.js';
import { foldFindings } from '../src/services/findings.js';
import { INCIDENT_CSV_COLUMNS, incidentCsvCells, incidentExport, type IncidentSummary } from '../src/services/incidents.js';
import { buildApp } from '../src/web/app.js';
import { testEachBackend } from './helpers/db.js';
import { buildEstate } from './helpers/exposures-estate.js';
import { cliEntry, ROOT } from './helpers/independent-estate/cli.js';

const HOSTILE = '=cmd|"/c calc"!A1 <script>window.__xss=1</script>"\'&,x';
const PASSWORD = 'correct horse battery staple';

interface Answer { readonly status: number; readonly headers: Headers; readonly json: unknown; readonly text: string }
type Call = (method: string, path: string, o?: { body?: unknown; bearer?: string }) => Promise<Answer>;

async function serve(app: FastifyInstance): Promise<Call> {
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return async (method, path, o = {}) => {
    const headers: Record<string, string> = {};
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    if (o.bearer !== undefined) headers['authorization'] = `Bearer ${o.bearer}`;
    const res = await fetch(`${base}${path}`, { method, headers, redirect: 'manual', ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }) });
    const text = await res.text();
    const json: unknown = (res.headers.get('content-type') ?? '').startsWith('application/json') ? JSON.parse(text) : null;
    return { status: res.status, headers: res.headers, json, text };
  };
}

function code(a: Answer): string | undefined {
  return (a.json as { error?: { code?: string } } | null)?.error?.code;
}

interface Link { kind: string; targetId: number; relation: string; finding: { ip: string } | null; campaign: { name: string } | null }
interface Detail { id: number; orgId: number | null; links: Link[]; events: Array<{ kind: string; detail: Record<string, unknown> | null }> }

function stage0(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    reporter: { name: 'Ana', role: 'IT lead', phone: '+49 30 1234567', email: 'ana@uncompromised.example' },
    summary: HOSTILE, types: ['web-shell'], detectedAt: '2026-03-02T09:30+01:00', ongoing: true, tlp: 'AMBER', ...over,
  };
}

/** Every page of the JSON list, following nextCursor. */
async function jsonPages(call: Call, bearer: string, filter: string, limit: number): Promise<{ items: IncidentSummary[]; pages: number }> {
  const items: IncidentSummary[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const a = await call('GET', `/api/incidents?${filter}&limit=${limit}${cursor === null ? '' : `&cursor=${cursor}`}`, { bearer });
    assert.equal(a.status, 200, a.text);
    const page = a.json as { items: IncidentSummary[]; nextCursor: string | null };
    items.push(...page.items);
    cursor = page.nextCursor;
    pages++;
  } while (cursor !== null);
  return { items, pages };
}

function jsonl(text: string): IncidentSummary[] {
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as IncidentSummary);
}

interface Run { readonly code: number | null; readonly stdout: string; readonly stderr: string }

function tocsin(args: readonly string[], env: Readonly<Record<string, string>>): Promise<Run> {
  const child = spawn(process.execPath, [...cliEntry().nodeArgs, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
  return new Promise((resolve) => child.on('close', (c) => resolve({ code: c, stdout: out, stderr: err })));
}

testEachBackend('incidents: CSV/JSONL downloads equal the JSON list and are scoped; links by hand; export links', async ({ database, url }) => {
  const db = database.db;
  await buildEstate(database);
  await foldFindings(db);
  const campaign = await createCampaign(db, { name: 'ProxyLogon wave', cves: ['CVE-2021-26855'], createdBy: 'tester', fromAddress: 'cert@cert.test' });
  const registry = createConstituencyStore(db);
  const customer = await registry.getOrg('Customer GmbH');
  const evil = await registry.getOrg('=Evil Org');
  assert.ok(customer !== null && evil !== null);
  const customerFinding = (await (async () => {
    for await (const f of listFindings(db, { org: 'Customer GmbH' })) return f;
    return undefined;
  })());
  assert.ok(customerFinding !== undefined, 'the estate has a finding of Customer GmbH');

  await addUser(db, { email: 'customer@example.org', role: 'org', org: 'Customer GmbH', password: PASSWORD });
  await addUser(db, { email: 'evil@example.org', role: 'org', org: '=Evil Org', password: PASSWORD });
  await addUser(db, { email: 'analyst@example.org', role: 'analyst', password: PASSWORD });
  const cust = (await createToken(db, 'customer@example.org')).token;
  const other = (await createToken(db, 'evil@example.org')).token;
  const analyst = (await createToken(db, 'analyst@example.org')).token;

  let custReport = 0;
  let evilReport = 0;
  const app = await buildApp({ db });
  try {
    const call = await serve(app);
    // Five reports: three of Customer GmbH (no CVEs: no automatic links), one of =Evil Org, one free-text by staff.
    const ids: number[] = [];
    for (const [bearer, body] of [
      [cust, stage0()], [other, stage0({ summary: 'evil one' })], [cust, stage0({ summary: 'second' })],
      [analyst, stage0({ org: 'Not In Registry Ltd', summary: 'by phone' })], [cust, stage0({ summary: 'third' })],
    ] as const) {
      const made = await call('POST', '/api/incidents', { bearer, body });
      assert.equal(made.status, 200, made.text);
      ids.push((made.json as Detail).id);
    }
    custReport = ids[0] ?? 0;
    evilReport = ids[1] ?? 0;

    // Staff: the downloads equal the JSON list read in pages of 2.
    const listed = await jsonPages(call, analyst, 'status=all', 2);
    assert.equal(listed.pages, 3);
    assert.deepEqual(listed.items.map((i) => i.id), [...ids].reverse());
    const csv = await call('GET', '/api/incidents?status=all&format=csv', { bearer: analyst });
    assert.equal(csv.status, 200, csv.text);
    assert.match(csv.headers.get('content-type') ?? '', /^text\/csv/);
    assert.equal(csv.headers.get('content-disposition'), 'attachment; filename="incidents.csv"');
    assert.equal(csv.text, [INCIDENT_CSV_COLUMNS, ...listed.items.map(incidentCsvCells)].map(csvLine).join(''), 'CSV = the JSON list, cell for cell');
    const rows = parseCsv(csv.text);
    assert.equal(rows.length, 1 + ids.length);
    const summaryCol = INCIDENT_CSV_COLUMNS.indexOf('summary');
    assert.ok(rows.slice(1).some((r) => r[summaryCol]?.startsWith("'=cmd")), 'a formula-looking summary is neutralised');
    const lines = await call('GET', '/api/incidents?status=all&format=jsonl', { bearer: analyst });
    assert.equal(lines.status, 200, lines.text);
    assert.match(lines.headers.get('content-type') ?? '', /^application\/x-ndjson/);
    assert.deepEqual(jsonl(lines.text), listed.items, 'JSONL = the JSON list, field for field');
    // The service walks keyset pages (here of 2) and gives the same list.
    const walked: IncidentSummary[] = [];
    for await (const i of (await incidentExport(db, { kind: 'all' }, { status: 'all' }, { pageSize: 2 })).records) walked.push(i);
    assert.deepEqual(walked.map((i) => i.id), listed.items.map((i) => i.id));
    // Filters apply to the download; a bad one answers its code before any byte of a file.
    const filtered = await call('GET', `/api/incidents?status=received&org=${encodeURIComponent('=Evil Org')}&format=jsonl`, { bearer: analyst });
    assert.deepEqual(jsonl(filtered.text).map((i) => i.id), [evilReport]);
    const bad = await call('GET', '/api/incidents?status=nonsense&format=csv', { bearer: analyst });
    assert.equal(bad.status, 400);
    assert.equal(code(bad), 'TOCSIN_ARG_INVALID');

    // An organisation's download: only its own reports, equal to its JSON list; naming another organisation is refused.
    const own = await jsonPages(call, cust, 'status=all', 2);
    assert.deepEqual(own.items.map((i) => i.orgId), [customer.id, customer.id, customer.id]);
    const ownCsv = await call('GET', '/api/incidents?status=all&format=csv', { bearer: cust });
    assert.equal(ownCsv.status, 200);
    assert.equal(ownCsv.text, [INCIDENT_CSV_COLUMNS, ...own.items.map(incidentCsvCells)].map(csvLine).join(''));
    assert.ok(!ownCsv.text.includes('evil one') && !ownCsv.text.includes('by phone'));
    const ownLines = jsonl((await call('GET', '/api/incidents?status=all&format=jsonl', { bearer: cust })).text);
    assert.deepEqual(ownLines, own.items);
    assert.ok(ownLines.every((i) => i.owner === null));
    const theirs = await call('GET', `/api/incidents?org=${encodeURIComponent('=Evil Org')}&format=csv`, { bearer: cust });
    assert.equal(theirs.status, 403);
    assert.equal(code(theirs), 'TOCSIN_FORBIDDEN');

    // Links by hand: a finding, the campaign and another organisation's report.
    for (const body of [
      { kind: 'finding', targetId: customerFinding.id, note: `internal ${HOSTILE}` }, { kind: 'campaign', targetId: campaign.id }, { kind: 'incident', targetId: evilReport },
    ]) {
      const linked = await call('POST', `/api/incidents/${custReport}/links`, { bearer: analyst, body });
      assert.equal(linked.status, 200, linked.text);
    }
    const again = await call('POST', `/api/incidents/${custReport}/links`, { bearer: analyst, body: { kind: 'campaign', targetId: campaign.id } });
    assert.equal(again.status, 200, 'linking twice is one link');
    const shown = (await call('GET', `/api/incidents/${custReport}`, { bearer: analyst })).json as Detail;
    assert.deepEqual(shown.links.map((l) => [l.kind, l.targetId, l.relation]), [
      ['campaign', campaign.id, 'related'], ['finding', customerFinding.id, 'related'], ['incident', evilReport, 'related'],
    ]);
    assert.equal(shown.links.find((l) => l.kind === 'finding')?.finding?.ip, customerFinding.ip);
    assert.equal(shown.events.filter((e) => e.kind === 'linked').length, 3);
    assert.ok(shown.events.some((e) => e.kind === 'linked' && e.detail?.['note'] === `internal ${HOSTILE}`), 'the note is kept for staff');
    // The organisation sees its finding and the warning, not the other organisation's report nor the note.
    const theirView = (await call('GET', `/api/incidents/${custReport}`, { bearer: cust })).json as Detail;
    assert.deepEqual(theirView.links.map((l) => l.kind), ['campaign', 'finding']);
    assert.ok(!JSON.stringify(theirView.events).includes('internal'), 'the link note stays internal');
    assert.ok(!JSON.stringify(theirView.events).includes(`"targetId":${evilReport}`));
    // Refusals: organisation users (403, audited), missing targets, a report linked to itself.
    for (const bearer of [cust, other]) {
      const denied = await call('POST', `/api/incidents/${custReport}/links`, { bearer, body: { kind: 'campaign', targetId: campaign.id } });
      assert.equal(denied.status, 403, denied.text);
      assert.equal(code(denied), 'TOCSIN_FORBIDDEN');
    }
    const noFinding = await call('POST', `/api/incidents/${custReport}/links`, { bearer: analyst, body: { kind: 'finding', targetId: 999_999_999 } });
    assert.deepEqual([noFinding.status, code(noFinding)], [404, 'TOCSIN_FINDING_NOT_FOUND']);
    const noReport = await call('POST', '/api/incidents/999999999/links', { bearer: analyst, body: { kind: 'campaign', targetId: campaign.id } });
    assert.deepEqual([noReport.status, code(noReport)], [404, 'TOCSIN_INCIDENT_NOT_FOUND']);
    const self = await call('POST', `/api/incidents/${custReport}/links`, { bearer: analyst, body: { kind: 'incident', targetId: custReport } });
    assert.deepEqual([self.status, code(self)], [400, 'TOCSIN_INCIDENT_INVALID']);
    const badKind = await call('POST', `/api/incidents/${custReport}/links`, { bearer: analyst, body: { kind: 'host', targetId: 1 } });
    assert.equal(badKind.status, 400);

    // Pages: the report page shows the links, the link form and the exports; the lists link their download.
    const page = await call('GET', `/incidents/${custReport}`, { bearer: analyst });
    assert.equal(page.status, 200, page.text.slice(0, 300));
    assert.ok(page.text.includes(`href="/hosts/${customerFinding.ip}"`), 'the hand-linked finding links its host');
    assert.ok(page.text.includes(`href="/campaigns/${campaign.id}"`));
    assert.ok(page.text.includes(`href="/incidents/${evilReport}"`));
    assert.ok(page.text.includes(`data-api="/api/incidents/${custReport}/links"`));
    assert.ok(page.text.includes(`href="/api/incidents/${custReport}/misp.json"`) && page.text.includes(`href="/api/incidents/${custReport}/stix.json"`));
    assert.ok(!page.text.includes('<script>window.__xss'), 'the note is escaped on the page');
    const misp = await call('GET', `/api/incidents/${custReport}/misp.json`, { bearer: analyst });
    assert.equal(misp.status, 200, misp.text.slice(0, 300));
    const portalPage = await call('GET', `/portal/incidents/${custReport}`, { bearer: cust });
    assert.equal(portalPage.status, 200);
    assert.ok(!portalPage.text.includes('/links"') && !portalPage.text.includes('misp.json'), 'no link form or export for the organisation');
    assert.ok(!portalPage.text.includes(`#${evilReport}<`), 'the other organisation\'s report is not on the organisation\'s page');

    const queue = await call('GET', `/incidents?status=received&category=C2&org=${encodeURIComponent('=Evil Org')}`, { bearer: analyst });
    assert.equal(queue.status, 200);
    assert.ok(queue.text.includes(`href="/api/incidents?status=received&amp;category=C2&amp;org=%3DEvil+Org&amp;format=csv"`), queue.text.match(/data-section="downloads".*/)?.[0]);
    const defaultQueue = await call('GET', '/incidents', { bearer: analyst });
    assert.ok(defaultQueue.text.includes('href="/api/incidents?status=open&amp;format=jsonl"'), 'the page\'s default filter is made explicit');
    const portalList = await call('GET', '/portal/incidents?status=all&org=x', { bearer: cust });
    const href = /href="(\/api\/incidents\?[^"]*format=csv)"/.exec(portalList.text)?.[1]?.replace(/&amp;/g, '&');
    assert.equal(href, '/api/incidents?status=all&format=csv');
    const followed = await call('GET', href, { bearer: cust });
    assert.equal(followed.text, ownCsv.text, 'the portal link downloads the organisation\'s own list');

    const audit = await auditRows(db, 500);
    assert.ok(audit.some((r) => r.route === '/api/incidents/:id/links' && r.status === 403 && r.email === 'evil@example.org'));
    assert.ok(audit.some((r) => r.route === '/api/incidents/:id/links' && r.status === 200 && r.orgScope === customer.id));
    assert.ok(audit.some((r) => r.route === '/api/incidents' && r.method === 'GET' && r.status === 200 && r.orgScope === customer.id && r.email === 'customer@example.org'));
  } finally {
    await app.close();
  }

  // The CLI: link, shown by `incident show`; exactly one target flag.
  const home = mkdtempSync(join(tmpdir(), 'tocsin-incident-links-'));
  const env = { TOCSIN_HOME: home, TOCSIN_DATABASE_URL: url };
  try {
    const [linked, twoFlags, noFlag] = await Promise.all([
      tocsin(['incident', 'link', String(evilReport), '--incident', String(custReport), '--note', 'same actor', '--by', 'cli-analyst'], env),
      tocsin(['incident', 'link', String(evilReport), '--finding', '1', '--campaign', '1'], env),
      tocsin(['incident', 'link', String(evilReport)], env),
    ]);
    assert.equal(linked.code, 0, linked.stderr);
    assert.match(linked.stdout, new RegExp(`^incident ${evilReport}: linked to incident ${custReport} \\(1 link\\(s\\)\\)\\n$`));
    for (const r of [twoFlags, noFlag]) {
      assert.equal(r.code, 64, r.stderr);
      assert.match(r.stderr, /TOCSIN_ARG_INVALID/);
    }
    const show = await tocsin(['incident', 'show', String(evilReport)], env);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, new RegExp(`\\n  incident ${custReport} \\(related\\): received `));
    assert.match(show.stdout, /linked +by cli-analyst .*"note":"same actor"/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
