/**
 * Incident reports end to end (issue 10 §5), on both database backends, with data built by the real services (the
 * exposures estate, a findings fold, a warning campaign) and the API over real HTTP on 127.0.0.1:
 * - an organisation user reporting from its warning, naming another organisation, gets the report stored for its
 *   own organisation, linked to the campaign and to its own open findings of the campaign's CVEs, and it appears
 *   in the analyst's triage queue with those links ("done when");
 * - another organisation sees none of it (list, show, stage 1, upload, download: 404), cannot use a ticket that
 *   is not its own, and cannot triage (403); audit rows are written for the reads and denials;
 * - staff triage: allowed transitions stamp the acknowledge/first-response clocks, refused ones answer their codes;
 *   duplicate-of links; overdue filter at a later `now`;
 * - attachments: stored once per content, capped at 5 MiB, file name sanitised, downloaded as an attachment;
 * - hostile strings round-trip exactly in JSON and are escaped on the pages; the CLI lists (CSV formula-safe),
 *   shows, refuses a bad transition and bad report files with their codes, and files a report.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { auditRows } from '../src/platform/db/account-store.js';
import { campaignMessages } from '../src/platform/db/campaign-store.js';
import { createConstituencyStore } from '../src/platform/db/constituency-store.js';
import { addUser, createToken } from '../src/services/accounts.js';
import { createCampaign } from '../src/services/campaigns.js';
import { foldFindings } from '../src/services/findings.js';
import { listIncidentPage, safeFilename } from '../src/services/incidents.js';
import { buildApp } from '../src/web/app.js';
import { testEachBackend } from './helpers/db.js';
import { buildEstate } from './helpers/exposures-estate.js';
import { cliEntry, ROOT } from './helpers/independent-estate/cli.js';

const HOSTILE = '=cmd|"/c calc"!A1 <script>window.__xss=1</script>"\'&';
const PASSWORD = 'correct horse battery staple';

interface Answer { readonly status: number; readonly headers: Headers; readonly json: unknown; readonly text: string; readonly bytes: Buffer }
type Call = (method: string, path: string, o?: { body?: unknown; bearer?: string }) => Promise<Answer>;

async function serve(app: FastifyInstance): Promise<Call> {
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return async (method, path, o = {}) => {
    const headers: Record<string, string> = {};
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    if (o.bearer !== undefined) headers['authorization'] = `Bearer ${o.bearer}`;
    const res = await fetch(`${base}${path}`, { method, headers, redirect: 'manual', ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }) });
    const bytes = Buffer.from(await res.arrayBuffer());
    const text = bytes.toString('utf8');
    let json: unknown = null;
    if ((res.headers.get('content-type') ?? '').startsWith('application/json') && !path.includes('/attachments/')) json = JSON.parse(text);
    return { status: res.status, headers: res.headers, json, text, bytes };
  };
}

function code(a: Answer): string | undefined {
  return (a.json as { error?: { code?: string } } | null)?.error?.code;
}

interface Detail {
  id: number; status: string; category: string | null; owner: string | null; org: string | null; orgId: number | null; summary: string; cves: string[];
  sla: { provisional: boolean; acknowledge: { at: string | null; due: string }; firstResponse: { at: string | null } };
  links: Array<{ kind: string; targetId: number; relation: string; finding: { ip: string; cve: string } | null }>;
  reporter: { name: string }; events: Array<{ kind: string; who: string; detail: Record<string, unknown> | null }>;
  attachments: Array<{ id: number }>;
}

function stage0(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    reporter: { name: HOSTILE, role: 'IT lead', phone: '+49 30 1234567', email: 'ana@uncompromised.example' },
    summary: HOSTILE, types: ['web-shell'], detectedAt: '2026-03-02T09:30+01:00', ongoing: true, impact: { integrity: true }, tlp: 'AMBER', ...over,
  };
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

testEachBackend('incidents: portal report linked to findings and campaign, scoping, triage, attachments, pages, CLI', async ({ database, url }) => {
  const db = database.db;
  await buildEstate(database);
  await foldFindings(db);
  const campaign = await createCampaign(db, { name: `ProxyLogon ${HOSTILE}`, cves: ['CVE-2021-26855'], createdBy: 'tester', fromAddress: 'cert@cert.test' });
  const registry = createConstituencyStore(db);
  const customer = await registry.getOrg('Customer GmbH');
  const evil = await registry.getOrg('=Evil Org');
  assert.ok(customer !== null && evil !== null);
  const messages = await campaignMessages(db, campaign.id);
  const customerTicket = messages.find((m) => m.orgId === customer.id)?.ticket;
  assert.ok(customerTicket !== undefined, `the campaign warned Customer GmbH: ${messages.map((m) => m.orgName).join(', ')}`);

  await addUser(db, { email: 'customer@example.org', role: 'org', org: 'Customer GmbH', password: PASSWORD });
  await addUser(db, { email: 'evil@example.org', role: 'org', org: '=Evil Org', password: PASSWORD });
  await addUser(db, { email: 'analyst@example.org', role: 'analyst', password: PASSWORD });
  const cust = (await createToken(db, 'customer@example.org')).token;
  const other = (await createToken(db, 'evil@example.org')).token;
  const analyst = (await createToken(db, 'analyst@example.org')).token;

  let idleId = 0;
  const app = await buildApp({ db });
  try {
    const call = await serve(app);

    // An organisation user reports from its warning, claiming to be another organisation: stored for its own.
    const made = await call('POST', '/api/incidents', { bearer: cust, body: stage0({ orgId: evil.id, org: '=Evil Org', campaignId: campaign.id }) });
    assert.equal(made.status, 200, made.text);
    const inc = made.json as Detail;
    assert.equal(inc.orgId, customer.id);
    assert.equal(inc.org, 'Customer GmbH');
    assert.equal(inc.status, 'received');
    assert.equal(inc.summary, HOSTILE, 'hostile text round-trips exactly');
    assert.equal(inc.reporter.name, HOSTILE);
    assert.deepEqual(inc.cves, ['CVE-2021-26855'], 'the campaign\'s CVEs are taken over');
    assert.equal(inc.sla.provisional, true);
    const findingLinks = inc.links.filter((l) => l.kind === 'finding');
    assert.ok(findingLinks.length >= 1, JSON.stringify(inc.links));
    assert.ok(findingLinks.every((l) => l.finding?.cve === 'CVE-2021-26855' && l.finding.ip.startsWith('192.0.2.')), JSON.stringify(findingLinks));
    assert.ok(findingLinks.some((l) => l.finding?.ip === '192.0.2.70'));
    assert.ok(inc.links.some((l) => l.kind === 'campaign' && l.targetId === campaign.id && l.relation === 'reported-from'));

    // It is in the analyst's triage queue, with its links.
    const queue = await call('GET', '/api/incidents?status=received', { bearer: analyst });
    assert.equal(queue.status, 200, queue.text);
    assert.deepEqual((queue.json as { items: Detail[] }).items.map((i) => i.id), [inc.id]);
    const seen = await call('GET', `/api/incidents/${inc.id}`, { bearer: analyst });
    assert.equal(seen.status, 200);
    assert.ok((seen.json as Detail).links.some((l) => l.finding?.ip === '192.0.2.70'));

    // Another organisation sees nothing of it and cannot touch it.
    const theirs = await call('GET', '/api/incidents?status=all', { bearer: other });
    assert.equal(theirs.status, 200);
    assert.deepEqual((theirs.json as { items: unknown[] }).items, []);
    for (const [method, path, body] of [
      ['GET', `/api/incidents/${inc.id}`, undefined], ['PUT', `/api/incidents/${inc.id}/stage1`, { assets: ['x'] }],
      ['POST', `/api/incidents/${inc.id}/attachments`, { filename: 'a.txt', text: 'x' }],
    ] as const) {
      const denied = await call(method, path, { bearer: other, ...(body === undefined ? {} : { body }) });
      assert.equal(denied.status, 404, `${method} ${path}: ${denied.text}`);
      assert.equal(code(denied), 'TOCSIN_INCIDENT_NOT_FOUND');
    }
    const wrongTicket = await call('POST', '/api/incidents', { bearer: other, body: stage0({ ticket: customerTicket }) });
    assert.equal(wrongTicket.status, 404);
    assert.equal(code(wrongTicket), 'TOCSIN_CAMPAIGN_NOT_FOUND');
    assert.equal(code(await call('GET', '/api/incidents?org=Customer%20GmbH', { bearer: other })), 'TOCSIN_FORBIDDEN');
    const orgTriage = await call('POST', `/api/incidents/${inc.id}/triage`, { bearer: cust, body: { status: 'triage' } });
    assert.equal(orgTriage.status, 403);
    assert.equal(code(orgTriage), 'TOCSIN_FORBIDDEN');
    const invalid = await call('POST', '/api/incidents', { bearer: cust, body: stage0({ detectedAt: 'yesterday', reporter: { name: 'x', role: 'y', phone: 'z', email: 'bad' } }) });
    assert.equal(invalid.status, 400);
    assert.equal(code(invalid), 'TOCSIN_INCIDENT_INVALID');
    assert.match((invalid.json as { error: { message: string } }).error.message, /reporter\.phone.*reporter\.email.*detectedAt|reporter\.phone/);

    // Stage 1 by the reporter.
    const s1 = await call('PUT', `/api/incidents/${inc.id}/stage1`, { bearer: cust, body: { assets: ['mail01'], indicators: ['203.0.113.9', HOSTILE], actionsTaken: 'isolated' } });
    assert.equal(s1.status, 200, s1.text);

    // Triage: refused shortcuts, then the path; clocks stamped once.
    const shortcut = await call('POST', `/api/incidents/${inc.id}/triage`, { bearer: analyst, body: { status: 'resolved' } });
    assert.equal(shortcut.status, 409);
    assert.equal(code(shortcut), 'TOCSIN_INCIDENT_STATE');
    const t1 = await call('POST', `/api/incidents/${inc.id}/triage`, { bearer: analyst, body: { status: 'triage', owner: 'analyst@example.org' } });
    assert.equal(t1.status, 200, t1.text);
    const afterAck = t1.json as Detail;
    assert.notEqual(afterAck.sla.acknowledge.at, null);
    assert.equal(afterAck.sla.firstResponse.at, null);
    const noCat = await call('POST', `/api/incidents/${inc.id}/triage`, { bearer: analyst, body: { status: 'incident' } });
    assert.equal(noCat.status, 400);
    assert.equal(code(noCat), 'TOCSIN_INCIDENT_INVALID');
    const t2 = await call('POST', `/api/incidents/${inc.id}/triage`, { bearer: analyst, body: { status: 'incident', category: 'C2', note: `internal ${HOSTILE}` } });
    assert.equal(t2.status, 200, t2.text);
    const decided = t2.json as Detail;
    assert.deepEqual([decided.status, decided.category, decided.sla.provisional], ['incident', 'C2', false]);
    assert.notEqual(decided.sla.firstResponse.at, null);
    assert.equal(decided.sla.acknowledge.at, afterAck.sla.acknowledge.at, 'the acknowledge time is kept');
    // The organisation sees the decision but not the analyst's note or the owner.
    const ownView = (await call('GET', `/api/incidents/${inc.id}`, { bearer: cust })).json as Detail;
    assert.equal(ownView.owner, null);
    assert.ok(!JSON.stringify(ownView.events).includes('internal'), 'analyst notes stay internal');
    assert.ok(ownView.events.some((e) => e.kind === 'triaged' && e.detail?.['to'] === 'incident'));
    assert.ok(!JSON.stringify(ownView.events).includes('analyst@example.org'), 'analysts are "CERT" to the organisation');
    assert.deepEqual(ownView.events.filter((e) => e.kind === 'reported' || e.kind === 'stage1').map((e) => e.who), ['customer@example.org', 'customer@example.org']);

    // A second report (an analyst, free-text organisation) marked as a duplicate of the first.
    const second = await call('POST', '/api/incidents', { bearer: analyst, body: stage0({ org: 'Not In Registry Ltd', cves: ['CVE-2021-26855'] }) });
    assert.equal(second.status, 200, second.text);
    const dup = second.json as Detail & { orgUnregistered: boolean };
    assert.deepEqual([dup.orgId, dup.org, dup.orgUnregistered, dup.links.length], [null, 'Not In Registry Ltd', true, 0]);
    assert.equal((await call('POST', `/api/incidents/${dup.id}/triage`, { bearer: analyst, body: { status: 'triage' } })).status, 200);
    const missingDup = await call('POST', `/api/incidents/${dup.id}/triage`, { bearer: analyst, body: { status: 'duplicate' } });
    assert.equal(code(missingDup), 'TOCSIN_INCIDENT_INVALID');
    const marked = await call('POST', `/api/incidents/${dup.id}/triage`, { bearer: analyst, body: { status: 'duplicate', duplicateOf: inc.id } });
    assert.equal(marked.status, 200, marked.text);
    assert.ok((marked.json as Detail).links.some((l) => l.kind === 'incident' && l.targetId === inc.id && l.relation === 'duplicate-of'));
    assert.equal((await call('POST', `/api/incidents/${dup.id}/triage`, { bearer: analyst, body: { status: 'resolved' } })).status, 200);

    // Overdue: nothing now; the second report is resolved and the first met its clocks, so a report left alone is needed.
    const idle = await call('POST', '/api/incidents', { bearer: cust, body: stage0({ summary: 'idle report' }) });
    idleId = (idle.json as Detail).id;
    // Keyset paging, newest first.
    const p1 = (await call('GET', '/api/incidents?status=all&limit=2', { bearer: analyst })).json as { items: Detail[]; nextCursor: string | null };
    assert.ok(p1.nextCursor !== null);
    const p2 = (await call('GET', `/api/incidents?status=all&limit=2&cursor=${p1.nextCursor}`, { bearer: analyst })).json as { items: Detail[]; nextCursor: string | null };
    assert.deepEqual([...p1.items, ...p2.items].map((i) => i.id), [idleId, dup.id, inc.id]);
    assert.equal(p2.nextCursor, null);
    assert.equal(code(await call('GET', '/api/incidents?cursor=abc', { bearer: analyst })), 'TOCSIN_ARG_INVALID');
    assert.deepEqual((await listIncidentPage(db, { kind: 'all' }, { overdue: true, status: 'all', limit: 10 })).items.map((i) => i.id), []);
    const later = new Date(Date.now() + 2 * 3_600_000);
    const overdue = await listIncidentPage(db, { kind: 'all' }, { overdue: true, status: 'all', limit: 10 }, later);
    assert.deepEqual(overdue.items.map((i) => i.id), [idleId]);
    assert.equal(overdue.items[0]?.sla.acknowledge.overdue, true);

    // Attachments: once per content, capped, name sanitised, downloaded as an attachment; scoped.
    const kit = JSON.stringify({ tool: 'tocsin-forensics', findings: [{ rule: 'webshell', path: HOSTILE }] });
    const up = await call('POST', `/api/incidents/${inc.id}/attachments`, { bearer: cust, body: { filename: '../../etc/<script>.json', contentBase64: Buffer.from(kit).toString('base64') } });
    assert.equal(up.status, 200, up.text);
    const att = up.json as { id: number; filename: string; contentType: string; bytes: number; created: boolean };
    assert.deepEqual([att.filename, att.contentType, att.bytes, att.created], ['script_.json', 'application/json', Buffer.byteLength(kit), true]);
    const again = await call('POST', `/api/incidents/${inc.id}/attachments`, { bearer: cust, body: { filename: 'other.json', text: kit } });
    assert.deepEqual([(again.json as { id: number }).id, (again.json as { created: boolean }).created], [att.id, false]);
    const big = await call('POST', `/api/incidents/${inc.id}/attachments`, { bearer: cust, body: { filename: 'big.bin', contentBase64: Buffer.alloc(5 * 1024 * 1024 + 1, 1).toString('base64') } });
    assert.equal(big.status, 400, big.text.slice(0, 300));
    assert.equal(code(big), 'TOCSIN_INCIDENT_INVALID');
    const down = await call('GET', `/api/incidents/${inc.id}/attachments/${att.id}`, { bearer: cust });
    assert.equal(down.status, 200);
    assert.equal(down.bytes.toString('utf8'), kit);
    assert.match(down.headers.get('content-disposition') ?? '', /^attachment; filename="script_\.json"/);
    assert.equal(down.headers.get('x-content-type-options'), 'nosniff');
    assert.equal((await call('GET', `/api/incidents/${inc.id}/attachments/${att.id}`, { bearer: other })).status, 404);
    assert.equal(safeFilename('..\\..\\.bashrc'), 'bashrc');
    assert.equal(safeFilename('////'), 'attachment.bin');

    // Pages: the queue and the report escape hostile text and link the findings' hosts and the campaign.
    const queuePage = await call('GET', '/incidents?status=all', { bearer: analyst });
    assert.equal(queuePage.status, 200, queuePage.text.slice(0, 300));
    assert.ok(!queuePage.text.includes('<script>window.__xss'), 'no raw script from a report');
    assert.ok(queuePage.text.includes('&lt;script&gt;window.__xss=1&lt;/script&gt;'));
    assert.match(queuePage.text, new RegExp(`href="/incidents/${inc.id}"`));
    const detailPage = await call('GET', `/incidents/${inc.id}`, { bearer: analyst });
    assert.equal(detailPage.status, 200);
    assert.ok(detailPage.text.includes('href="/hosts/192.0.2.70"'), 'links to the finding\'s host');
    assert.ok(detailPage.text.includes(`href="/campaigns/${campaign.id}"`));
    assert.ok(detailPage.text.includes(`data-api="/api/incidents/${inc.id}/triage"`));
    assert.ok(!detailPage.text.includes('<script>window.__xss'));
    const portalPage = await call('GET', `/portal/incidents/${inc.id}`, { bearer: cust });
    assert.equal(portalPage.status, 200);
    assert.ok(!portalPage.text.includes('<script>window.__xss'));
    assert.ok(portalPage.text.includes(`data-api="/api/incidents/${inc.id}/stage1"`));
    assert.ok(!portalPage.text.includes('internal'), 'the analyst note is not on the organisation\'s page');
    assert.equal((await call('GET', `/portal/incidents/${inc.id}`, { bearer: other })).status, 404);
    const ownList = await call('GET', '/portal/incidents?status=all', { bearer: other });
    assert.equal(ownList.status, 200);
    assert.ok(!ownList.text.includes(`data-incident="${inc.id}"`));
    const form = await call('GET', `/portal/incidents/new?campaign=${campaign.id}&cves=CVE-2021-27065`, { bearer: cust });
    assert.equal(form.status, 200);
    assert.match(form.text, new RegExp(`name="campaignId" value="${campaign.id}"`));
    assert.match(form.text, /CVE-2021-26855\nCVE-2021-27065<\/textarea>/);
    assert.ok(!form.text.includes('<script>window.__xss'), 'the campaign name is escaped');
    assert.notEqual((await call('GET', '/incidents', { bearer: cust })).status, 200, 'the triage queue is staff only');

    // OpenAPI lists the path parameters.
    const doc = (await call('GET', '/api/openapi.json')).json as { paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string }> }>> };
    assert.ok(doc.paths['/api/incidents/{id}']?.['get']?.parameters?.some((p) => p.name === 'id' && p.in === 'path'));

    // Audit: the other organisation's denied read is recorded.
    const audit = await auditRows(db, 500);
    assert.ok(audit.some((r) => r.route === '/api/incidents/:id' && r.status === 404 && r.email === 'evil@example.org'));
    assert.ok(audit.some((r) => r.route === '/api/incidents' && r.method === 'POST' && r.orgScope === customer.id));
  } finally {
    await app.close();
  }

  // The CLI (independent commands run side by side: each is a process start).
  const home = mkdtempSync(join(tmpdir(), 'tocsin-incidents-cli-'));
  const env = { TOCSIN_HOME: home, TOCSIN_DATABASE_URL: url };
  try {
    writeFileSync(join(home, 'binary.json'), Buffer.from([0x7b, 0x00, 0xff, 0xfe]));
    writeFileSync(join(home, 'phone.json'), JSON.stringify(stage0({ org: 'customer gmbh', cves: ['CVE-2021-26855'], summary: 'taken by phone' })));
    const [csv, bad, wrongFlag, missing, binary] = await Promise.all([
      tocsin(['incident', 'list', '--status', 'all', '--format', 'csv'], env),
      tocsin(['incident', 'triage', String(idleId), '--status', 'resolved'], env),
      tocsin(['incident', 'list', '--format', 'xml'], env),
      tocsin(['incident', 'report', '--file', join(home, 'nope.json')], env),
      tocsin(['incident', 'report', '--file', join(home, 'binary.json')], env),
    ]);
    assert.equal(csv.code, 0, csv.stderr);
    const lines = csv.stdout.trim().split('\r\n');
    assert.equal(lines.length, 4, csv.stdout);
    assert.ok(lines.slice(1).some((l) => l.endsWith(`"'=cmd|""/c calc""!A1 <script>window.__xss=1</script>""'&"`)), `the summary cannot run as a formula: ${lines[1] ?? ''}`);
    assert.equal(bad.code, 65, bad.stderr);
    assert.match(bad.stderr, /TOCSIN_INCIDENT_STATE/);
    assert.equal(wrongFlag.code, 64);
    assert.match(wrongFlag.stderr, /TOCSIN_ARG_INVALID/);
    assert.equal(missing.code, 66, missing.stderr);
    assert.match(missing.stderr, /TOCSIN_INPUT_UNREADABLE/);
    assert.equal(binary.code, 65, binary.stderr);
    assert.match(binary.stderr, /TOCSIN_INCIDENT_INVALID.*binary/);

    const [ok, filed] = await Promise.all([
      tocsin(['incident', 'triage', String(idleId), '--status', 'triage', '--category', 'c4', '--owner', 'duty@cert.example', '--by', 'cli-analyst'], env),
      tocsin(['incident', 'report', '--file', join(home, 'phone.json'), '--by', 'duty'], env),
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /received -> triage, C4, owner duty@cert\.example/);
    assert.equal(filed.code, 0, filed.stderr);
    assert.match(filed.stdout, /^\d+\n$/);
    assert.match(filed.stderr, /received for Customer GmbH; .*[1-9]\d* finding\(s\) linked/);

    const [show, jsonl] = await Promise.all([tocsin(['incident', 'show', String(idleId)], env), tocsin(['incident', 'list', '--format', 'jsonl'], env)]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /triaged +by cli-analyst/);
    assert.match(show.stdout, /^incident \d+: triage, C4,/);
    assert.equal(jsonl.code, 0, jsonl.stderr);
    const open = jsonl.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: number; status: string; reportedVia: string });
    assert.deepEqual(open.map((o) => o.status).sort(), ['incident', 'received', 'triage']);
    assert.equal(open.find((o) => o.status === 'received')?.reportedVia, 'cli');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
