/**
 * CSV and JSONL downloads of every list route (issue 10 §6) over real HTTP on 127.0.0.1, both database backends, on
 * the web estate (test/helpers/web-estate.ts) plus formula-like values: a host name `=HYPERLINK(...)` on an Alpha
 * address, an unattributed host `+cmd|...`, an organisation `=SUM(1+1)`, a campaign `-2+3 ...`, rescans requested as
 * `@...`. For each list route: the CSV has the header and one row per item of the JSON listing walked over all its
 * pages, cell for cell; the JSONL lines parse and equal those items; Content-Disposition is an attachment; no cell
 * starts a formula. An organisation user's download holds only its own rows (and staff-only lists answer it 403);
 * the services' keyset walks give the same records with pages of one row as with their default page size; the
 * pages' download links carry the current filters and work.
 * (GET /api/incidents is not covered: its route was being changed by another task when this was written.)
 */
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import type { Database } from '../src/platform/db/connect.js';
import { finishRescan, queueRescan } from '../src/platform/db/rescan-store.js';
import { createScanStore } from '../src/platform/db/scan-store.js';
import type { AttemptResult } from '../src/scan/ports.js';
import { createToken } from '../src/services/accounts.js';
import { createCampaign } from '../src/services/campaigns.js';
import { campaignRecords, campaignsOverview, hostPage, hostRecords, type HostLine } from '../src/services/dashboard.js';
import { foldFindings } from '../src/services/findings.js';
import { portalExposureRecords, portalExposures, portalWarningRecords, portalWarnings } from '../src/services/portal.js';
import { createOrg, orgHistory, orgHistoryRecords, orgPage, orgRecords, reviewPage, reviewRecords } from '../src/services/registry-web.js';
import { listRescans, rescanRecords } from '../src/services/rescan-requests.js';
import { buildApp } from '../src/web/app.js';
import { testEachBackend } from './helpers/db.js';
import { buildWebEstate, type EstateOrg } from './helpers/web-estate.js';

const FORMULA_HOST = '=HYPERLINK("http://evil.test","x")';
const FORMULA_STRAY = '+cmd|\' /C calc\'!A0';
const FORMULA_ORG = '=SUM(1+1)';
const FORMULA_CAMPAIGN = '-2+3 follow-up';
const FORMULA_EMAIL = '@rescan@alpha-hospital.test';

type Item = Record<string, unknown>;
type Cell = string | number | boolean | null | undefined;

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: unknown;
}

async function serve(app: FastifyInstance): Promise<(path: string, bearer: string) => Promise<Answer>> {
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return async (path, bearer) => {
    const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${bearer}` }, redirect: 'manual' });
    const text = await res.text();
    const json: unknown = (res.headers.get('content-type') ?? '').startsWith('application/json') ? JSON.parse(text) : null;
    return { status: res.status, headers: res.headers, text, json };
  };
}

/** RFC 4180 as written by the server (CRLF line ends, "" inside quotes); every line must end with CRLF. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(cell); cell = ''; } else if (c === '\r' && text[i + 1] === '\n') { row.push(cell); rows.push(row); row = []; cell = ''; i++; } else cell += c;
  }
  assert.equal(quoted, false, 'unterminated quote');
  assert.equal(row.length === 0 && cell === '', true, 'the last line must end with CRLF');
  return rows;
}

/** A cell as a spreadsheet-safe CSV must hold it: a text starting with = + - @ TAB or CR gets a leading quote. */
function expectedCell(v: Cell): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
}

const s = (v: unknown): Cell => (v === null || v === undefined || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : JSON.stringify(v));
const words = (v: unknown): string => (Array.isArray(v) ? v.join(' ') : '');
const json = (v: unknown): string | null => (v === null || v === undefined ? null : JSON.stringify(v));

interface ListCase {
  readonly name: string;
  /** The JSON listing's first page (format left out). */
  readonly url: string;
  readonly token: string;
  /** The next page's URL from a page's answer, or null. */
  readonly next: (page: Item, url: string) => string | null;
  readonly file: string;
  readonly columns: readonly string[];
  readonly cells: (r: Item) => readonly Cell[];
  /** A value some item holds that must reach the CSV neutralised. */
  readonly formula?: string;
}

function withParam(url: string, key: string, value: string): string {
  const u = new URL(url, 'http://x');
  u.searchParams.set(key, value);
  return `${u.pathname}?${u.searchParams.toString()}`;
}

async function listing(call: (p: string, b: string) => Promise<Answer>, c: ListCase): Promise<Item[]> {
  const items: Item[] = [];
  let url: string | null = c.url;
  let pages = 0;
  while (url !== null) {
    const a = await call(url, c.token);
    assert.equal(a.status, 200, `${c.name} ${url}: ${a.text.slice(0, 300)}`);
    const page = a.json as Item;
    items.push(...(page['items'] as Item[]));
    url = c.next(page, url);
    assert.ok(++pages < 100, 'the listing pages forever');
  }
  return items;
}

/** Every string a CSV download holds (its cells) or a JSONL download (its values), for the tenant check. */
function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(strings);
  if (v !== null && typeof v === 'object') return Object.values(v).flatMap(strings);
  return [];
}

function leaks(text: readonly string[], others: readonly EstateOrg[], secretsOf: (o: EstateOrg) => string[]): string[] {
  const all = text.join('\n');
  return others.flatMap((o) => secretsOf(o)).filter((x) => all.includes(x));
}

function answered(ip: string, hostname: string, when: string): AttemptResult {
  return {
    ip, port: 443, hostname, outcome: 'answered', detail: null, facts: [], detectorRevisions: {}, tlsCert: null, attemptedAt: when,
    record: {
      ip, port: 443, hostname, tls: true, product: 'ms-exchange', edition: 'Exchange Server 2016', build: '15.1.2176.2', buildPrecision: 'exact',
      cu: 'CU19', su: null, vulnerable: ['CVE-2021-26855'], indeterminate: [], evidence: [], scannedAt: when, status: 200, notes: [],
    },
  };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function addFormulaData(database: Database, alpha: EstateOrg): Promise<void> {
  const db = database.db;
  const scans = createScanStore(db, { kbRevision: 'test' });
  const scan = await scans.createScan({ targets: ['198.18.10.9', '198.19.99.2'], ports: [443], options: {} });
  const at = new Date(Date.now() - 60_000).toISOString();
  await scans.recordBatch(scan.id, [answered('198.18.10.9', FORMULA_HOST, at), answered('198.19.99.2', FORMULA_STRAY, at)]);
  await scans.finishScan(scan.id, 'finished');
  await foldFindings(db, { who: 'lists-export-test' });
  await createOrg(db, { name: FORMULA_ORG, sector: 'health' }, 'lists-export-test');
  // Queued, not sent: a queued message is a warning too (only suppressed and cancelled ones are not).
  await createCampaign(db, { name: FORMULA_CAMPAIGN, group: 'ProxyLogon', createdBy: 'lists-export-test', fromAddress: 'cert@cert.test' });
  const user = await db.selectFrom('users').select('id').where('email', '=', 'it@alpha-hospital.test').executeTakeFirstOrThrow();
  for (let i = 0; i < 3; i++) {
    const q = await queueRescan(db, { orgId: alpha.id, userId: Number(user.id), email: i === 1 ? FORMULA_EMAIL : 'it@alpha-hospital.test', targets: [{ ip: '198.18.10.5', port: 443 }], maxPerDay: 100 });
    assert.equal(q.kind, 'queued');
    if (q.kind === 'queued') await finishRescan(db, q.row.id, { status: 'done', scanIds: [Number(scan.id)], closed: i, stillOpen: 1, error: null });
  }
}

testEachBackend('lists export: CSV and JSONL of every list route equal the JSON listing; scoped; formula-safe; attachments; page links', async ({ database }) => {
  const db = database.db;
  const estate = await buildWebEstate(database);
  const { alpha, beta, gamma } = estate.orgs;
  await addFormulaData(database, alpha);
  const analyst = (await createToken(db, estate.accounts.analyst.email)).token;
  const alphaUser = (await createToken(db, estate.accounts.alpha.email)).token;
  const betaUser = (await createToken(db, estate.accounts.beta.email)).token;
  const app = await buildApp({ db });
  try {
    const call = await serve(app);
    const cursorNext = (page: Item, url: string): string | null => (typeof page['nextCursor'] === 'string' ? withParam(url, 'cursor', page['nextCursor']) : null);
    const offsetNext = (page: Item, url: string): string | null => (typeof page['nextOffset'] === 'number' ? withParam(url, 'offset', String(page['nextOffset'])) : null);
    const single = (): null => null;
    const hostCells = (r: Item): Cell[] => [s(r['ip']), s(r['org']), s(r['orgId']), s(r['sector']), s(r['rule']), s(r['hostname']), s(r['product']), s(r['build']), s(r['lastSeen']), words(r['openCves']), s(r['patched']), s(r['compromised'])];
    const hostColumns = ['ip', 'org', 'org_id', 'sector', 'rule', 'hostname', 'product', 'build', 'last_seen', 'open_cves', 'patched', 'compromised'];
    const orgColumns = ['id', 'name', 'sector', 'country', 'size', 'parent', 'layer', 'source', 'networks', 'asns', 'domains', 'contacts'];
    const exposureColumns = ['ip', 'port', 'hostname', 'product', 'edition', 'build', 'build_precision', 'vulnerable', 'indeterminate', 'reported_cves',
      'compromised', 'open_findings', 'first_seen', 'last_seen', 'sources'];
    const exposureCells = (r: Item): Cell[] => [
      s(r['ip']), s(r['port']), s(r['hostname']), s(r['product']), s(r['edition']), s(r['build']), s(r['buildPrecision']), words(r['vulnerable']), words(r['indeterminate']),
      words(r['reportedCves']), s(r['compromised']), (r['findings'] as Item[]).filter((f) => f['state'] === 'open').map((f) => f['cve']).join(' '), s(r['firstSeen']), s(r['lastSeen']),
      words(r['sources']),
    ];
    const warningColumns = ['id', 'campaign_id', 'campaign', 'ticket', 'state', 'sent_at', 'delivered', 'bounced', 'acknowledged', 'acknowledged_at', 'exposures'];
    const warningCells = (r: Item): Cell[] => warningColumns.map((c) => s(r[c.replace(/_([a-z])/g, (_m, x: string) => x.toUpperCase())]));
    const rescanColumns = ['id', 'status', 'targets', 'requested_by', 'requested_at', 'started_at', 'finished_at', 'scan_ids', 'closed', 'still_open', 'error'];
    const rescanCells = (r: Item): Cell[] => [
      s(r['id']), s(r['status']), (r['targets'] as Array<{ ip: string; port: number }>).map((t) => `${t.ip}:${t.port}`).join(' '), s(r['requestedBy']), s(r['requestedAt']),
      s(r['startedAt']), s(r['finishedAt']), words(r['scanIds']), s(r['closed']), s(r['stillOpen']), s(r['error']),
    ];
    const alphaQ = encodeURIComponent(alpha.name);

    const cases: ListCase[] = [
      { name: 'hosts', url: '/api/hosts?limit=2', token: analyst, next: cursorNext, file: 'hosts', columns: hostColumns, cells: hostCells, formula: FORMULA_HOST },
      { name: 'hosts of Alpha', url: `/api/hosts?limit=1&org=${alphaQ}`, token: analyst, next: cursorNext, file: 'hosts', columns: hostColumns, cells: hostCells, formula: FORMULA_HOST },
      {
        name: 'campaigns', url: '/api/campaigns', token: analyst, next: single, file: 'campaigns', formula: FORMULA_CAMPAIGN,
        columns: ['id', 'name', 'state', 'template', 'created_at', 'created_by', 'approved_at', 'messages', 'deliveries'],
        cells: (r) => [s(r['id']), s(r['name']), s(r['state']), s(r['template']), s(r['createdAt']), s(r['createdBy']), s(r['approvedAt']), s(r['messages']), json(r['deliveries'])],
      },
      { name: 'organisations', url: '/api/orgs?limit=2', token: analyst, next: offsetNext, file: 'organisations', columns: orgColumns, cells: (r) => orgColumns.map((c) => s(r[c])), formula: FORMULA_ORG },
      { name: 'organisations (health, "a")', url: '/api/orgs?limit=1&sector=HEALTH&q=A', token: analyst, next: offsetNext, file: 'organisations', columns: orgColumns, cells: (r) => orgColumns.map((c) => s(r[c])) },
      {
        name: 'organisation audit', url: `/api/orgs/${alpha.id}/audit?limit=1000`, token: analyst, next: single, file: 'organisation-audit',
        columns: ['id', 'at', 'who', 'action', 'entity', 'entity_id', 'org_id', 'source', 'before', 'after'],
        cells: (r) => [s(r['id']), s(r['at']), s(r['who']), s(r['action']), s(r['entity']), s(r['entityId']), s(r['orgId']), s(r['source']), json(r['before']), json(r['after'])],
      },
      {
        name: 'attribution review', url: '/api/attribution/review?limit=1', token: analyst, next: offsetNext, file: 'attribution-review', formula: FORMULA_STRAY,
        columns: ['ip', 'kind', 'org', 'org_id', 'rule', 'ports', 'hostnames', 'feed_asn', 'first_seen', 'last_seen', 'candidates'],
        cells: (r) => [s(r['ip']), s(r['kind']), s(r['org']), s(r['orgId']), s(r['rule']), words(r['ports']), words(r['hostnames']), s(r['feedAsn']), s(r['firstSeen']), s(r['lastSeen']), json(r['candidates'])],
      },
      { name: 'my exposures (Alpha user)', url: '/api/my/exposures', token: alphaUser, next: single, file: 'exposures', columns: exposureColumns, cells: exposureCells, formula: FORMULA_HOST },
      { name: 'my exposures (staff naming Beta)', url: `/api/my/exposures?org=${encodeURIComponent(beta.name)}`, token: analyst, next: single, file: 'exposures', columns: exposureColumns, cells: exposureCells },
      { name: 'my warnings (Alpha user)', url: '/api/my/warnings', token: alphaUser, next: single, file: 'warnings', columns: warningColumns, cells: warningCells, formula: FORMULA_CAMPAIGN },
      { name: 'my rescans (Alpha user)', url: '/api/my/rescans', token: alphaUser, next: single, file: 'rescans', columns: rescanColumns, cells: rescanCells, formula: FORMULA_EMAIL },
    ];

    for (const c of cases) {
      const items = await listing(call, c);
      assert.ok(items.length > 0, `${c.name}: the estate must give the listing items`);
      const base = c.url.replace(/([?&])(limit|offset|cursor)=[^&]*&?/g, '$1').replace(/[?&]$/, '');

      const csv = await call(withParam(base, 'format', 'csv'), c.token);
      assert.equal(csv.status, 200, `${c.name}: ${csv.text.slice(0, 300)}`);
      assert.match(csv.headers.get('content-type') ?? '', /^text\/csv/);
      assert.equal(csv.headers.get('content-disposition'), `attachment; filename="${c.file}.csv"`, c.name);
      const rows = parseCsv(csv.text);
      assert.deepEqual(rows[0], c.columns, `${c.name}: header`);
      assert.equal(rows.length - 1, items.length, `${c.name}: one row per item of the JSON listing (all pages)`);
      items.forEach((it, i) => assert.deepEqual(rows[i + 1], c.cells(it).map(expectedCell), `${c.name}: row ${i + 1}`));
      for (const cell of rows.flat()) assert.doesNotMatch(cell, /^[=+\-@\t\r]/, `${c.name}: a cell starts a formula: ${cell}`);
      if (c.formula !== undefined) assert.ok(rows.flat().some((cell) => cell.includes(`'${c.formula ?? ''}`)), `${c.name}: the formula-like value is there, neutralised`);

      const jsonl = await call(withParam(base, 'format', 'jsonl'), c.token);
      assert.equal(jsonl.status, 200, c.name);
      assert.match(jsonl.headers.get('content-type') ?? '', /^application\/x-ndjson/);
      assert.equal(jsonl.headers.get('content-disposition'), `attachment; filename="${c.file}.jsonl"`, c.name);
      assert.ok(jsonl.text.endsWith('\n'), `${c.name}: JSONL ends with a newline`);
      const lines = jsonl.text.slice(0, -1).split('\n').map((l) => JSON.parse(l) as unknown);
      assert.deepEqual(lines, items, `${c.name}: JSONL lines = JSON items`);
    }

    // The CSV route of the portal is the same download as ?format=csv.
    const oldCsv = await call('/api/my/exposures.csv', alphaUser);
    assert.equal(oldCsv.status, 200);
    assert.equal(oldCsv.headers.get('content-disposition'), 'attachment; filename="exposures.csv"');
    assert.equal(oldCsv.text, (await call('/api/my/exposures?format=csv', alphaUser)).text);

    // An organisation user's downloads hold its own rows only; naming another organisation or a staff list is 403.
    for (const [user, own, others] of [[alphaUser, alpha, [beta, gamma]], [betaUser, beta, [alpha, gamma]]] as const) {
      for (const path of ['/api/my/exposures', '/api/my/warnings', '/api/my/rescans', '/api/exposures']) {
        for (const format of ['csv', 'jsonl'] as const) {
          const a = await call(`${path}?format=${format}`, user);
          assert.equal(a.status, 200, `${own.key} ${path} ${format}`);
          const values = format === 'csv' ? parseCsv(a.text).flat() : a.text.split('\n').filter((l) => l !== '').flatMap((l) => strings(JSON.parse(l)));
          assert.deepEqual(leaks(values, others, estate.secretsOf), [], `${own.key} ${path} ${format}`);
          if (path === '/api/my/exposures') {
            assert.ok(own.hosts.every((h) => values.some((v) => v === h.ip)), `${own.key} sees its own hosts`);
          }
        }
        const foreign = await call(`${path}?format=csv&org=${encodeURIComponent(others[0].name)}`, user);
        assert.equal(foreign.status, 403, `${own.key} ${path} naming another organisation`);
        assert.equal(foreign.headers.get('content-disposition'), null);
        assert.deepEqual(leaks([foreign.text], others, estate.secretsOf), []);
      }
    }
    for (const path of ['/api/hosts', '/api/campaigns', '/api/orgs', `/api/orgs/${alpha.id}/audit`, '/api/attribution/review']) {
      const a = await call(`${path}?format=csv`, alphaUser);
      assert.equal(a.status, 403, `${path}: staff only`);
      assert.equal(a.headers.get('content-disposition'), null);
    }
    // Bad filters are refused before the download starts.
    assert.equal((await call('/api/hosts?format=csv&cve=nope', analyst)).status, 400);
    assert.equal((await call('/api/hosts?format=xml', analyst)).status, 400);

    // The services' keyset walks: pages of one row give what the default page size gives, and what the JSON pages give.
    const hostAll: HostLine[] = [];
    for (let cursor: string | undefined, n = 0; n < 100; n++) {
      const p = await hostPage(db, { limit: 500, ...(cursor === undefined ? {} : { cursor }) });
      hostAll.push(...p.items);
      if (p.nextCursor === null) break;
      cursor = p.nextCursor;
    }
    assert.deepEqual(await collect((await hostRecords(db, {}, 1)).records), hostAll);
    assert.deepEqual(await collect(campaignRecords(db, 1)), await campaignsOverview(db));
    const orgsAll = await orgPage(db, { limit: 500 });
    assert.deepEqual(await collect(orgRecords(db, {}, 1)), orgsAll.items);
    assert.deepEqual(await collect(orgRecords(db, { sector: 'health' }, 1)), (await orgPage(db, { sector: 'health', limit: 500 })).items);
    const history = await orgHistory(db, String(alpha.id), 1000);
    assert.ok(history.rows.length >= 2, 'the audit walk must cross a page');
    assert.deepEqual(await collect((await orgHistoryRecords(db, String(alpha.id), 1)).records), history.rows);
    assert.deepEqual(await collect(await reviewRecords(db, 1)), (await reviewPage(db, { limit: 500 })).items);
    const alphaOrg = { orgId: alpha.id, org: alpha.name };
    assert.deepEqual(await collect(portalExposureRecords(db, alphaOrg, 1)), await portalExposures(db, alphaOrg));
    assert.deepEqual(await collect(portalWarningRecords(db, alphaOrg, 1)), await portalWarnings(db, alphaOrg));
    const rescans = await listRescans(db, alpha.id);
    assert.equal(rescans.length, 3);
    assert.deepEqual(await collect(rescanRecords(db, alpha.id, 1)), rescans);
    assert.deepEqual(await collect(rescanRecords(db, beta.id, 1)), [], 'another organisation\'s rescans are not in its walk');

    // The pages link the downloads with their current filters, and the links work.
    const pageCases: Array<[string, string, RegExp | null]> = [
      [`/hosts?org=${alphaQ}&sector=health`, analyst, /^\/api\/hosts\?org=Alpha\+Hospital&sector=health&format=(csv|jsonl)$/],
      ['/campaigns', analyst, null],
      ['/registry?q=a&sector=health', analyst, /^\/api\/orgs\?q=a&sector=health&format=(csv|jsonl)$/],
      [`/registry/${alpha.id}`, analyst, null],
      ['/review', analyst, null],
      ['/portal', alphaUser, null],
      ['/portal/warnings', alphaUser, null],
    ];
    for (const [page, token, shape] of pageCases) {
      const a = await call(page, token);
      assert.equal(a.status, 200, page);
      const links = [...a.text.matchAll(/<a href="([^"]+)" download data-download="(csv|jsonl)">/g)].map((m) => (m[1] ?? '').replace(/&amp;/g, '&'));
      assert.ok(links.length >= (page.startsWith('/portal') && page !== '/portal/warnings' ? 3 : 2), `${page}: download links ${JSON.stringify(links)}`);
      for (const href of links) {
        if (shape !== null && href.startsWith('/api/hosts') || shape !== null && href.startsWith('/api/orgs?')) assert.match(href, shape ?? /never/, `${page}: the link keeps the filters`);
        const d = await call(href, token);
        assert.equal(d.status, 200, `${page} -> ${href}`);
        assert.match(d.headers.get('content-disposition') ?? '', /^attachment; filename="[a-z-]+\.(csv|jsonl)"$/, href);
      }
    }
  } finally {
    await app.close();
  }
});
