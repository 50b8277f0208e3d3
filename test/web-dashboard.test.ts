/**
 * The analyst dashboard (issue 10 §3) over real HTTP on 127.0.0.1, both database backends, on the web estate
 * (test/helpers/web-estate.ts: real constituency import, scan store, feed import, fold, a campaign sent through the
 * local SMTP sink). Checks: GET /api/summary equals a recount from the findings listing and their events; the home
 * page's numbers equal the API's; organisation users get 403 on every staff route; the host list pages every host
 * exactly once (and filters on the server); the host drill-down shows hostile banners and names as escaped text; the
 * patch curve chart is SVG; campaigns show delivery states, a burn-down and a preview; the cache follows the data.
 */
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { COMPROMISED } from '../src/findings/index.js';
import { createScanStore } from '../src/platform/db/scan-store.js';
import type { AttemptResult } from '../src/scan/ports.js';
import { createToken } from '../src/services/accounts.js';
import { DashboardCache, nationalSummary, type PictureCounts } from '../src/services/dashboard.js';
import { findingEvents, foldFindings, listFindings, type Finding } from '../src/services/findings.js';
import { reportSubject } from '../src/services/report.js';
import { buildApp } from '../src/web/app.js';
import { testEachBackend } from './helpers/db.js';
import { HOSTILE, buildWebEstate } from './helpers/web-estate.js';
import type { Database } from '../src/platform/db/connect.js';

interface Answer {
  readonly status: number;
  readonly type: string;
  readonly text: string;
  readonly json: unknown;
  readonly location: string | null;
}

async function serve(app: FastifyInstance): Promise<(method: string, path: string, bearer: string, body?: unknown) => Promise<Answer>> {
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return async (method, path, bearer, body) => {
    const headers: Record<string, string> = { authorization: `Bearer ${bearer}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${base}${path}`, { method, headers, redirect: 'manual', ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    return { status: res.status, type, text, json: type.startsWith('application/json') ? JSON.parse(text) : null, location: res.headers.get('location') };
  };
}

type Counts = Record<keyof PictureCounts, number>;

/** The national picture recounted in TypeScript from the findings listing (every current finding) and their events. */
async function recount(database: Database): Promise<{ totals: Counts; bySector: Array<Counts & { sector: string }>; byGroup: Array<Counts & { group: string }> }> {
  const db = database.db;
  const sectorOf = new Map((await db.selectFrom('organisations').select(['id', 'sector']).execute()).map((o) => [Number(o.id), o.sector]));
  const findings: Array<Finding & { notified: boolean; sector: string }> = [];
  for await (const f of listFindings(db, { state: 'all' })) {
    const notified = (await findingEvents(db, f.id)).some((e) => e.kind === 'notified');
    const sector = f.orgId === null || !sectorOf.has(f.orgId) ? '(unattributed)' : (sectorOf.get(f.orgId) || '(no sector)');
    findings.push({ ...f, notified, sector });
  }
  const count = (fs: typeof findings): Counts => {
    const open = fs.filter((f) => f.state === 'open' && f.cve !== COMPROMISED);
    return {
      hostsExposed: new Set(open.map((f) => f.ip)).size,
      hostsVulnerable: new Set(open.filter((f) => f.verdict === 'vulnerable').map((f) => f.ip)).size,
      hostsCompromised: new Set(fs.filter((f) => f.state === 'open' && f.cve === COMPROMISED).map((f) => f.ip)).size,
      organisationsExposed: new Set(open.filter((f) => f.orgId !== null).map((f) => f.orgId)).size,
      findingsOpen: open.length,
      findingsPatched: fs.filter((f) => f.state === 'closed' && f.closeReason === 'patched').length,
      findingsNotified: fs.filter((f) => f.notified).length,
    };
  };
  const sectors = [...new Set(findings.map((f) => f.sector))].sort();
  return {
    totals: count(findings),
    bySector: sectors.map((sector) => ({ sector, ...count(findings.filter((f) => f.sector === sector)) })),
    byGroup: reportSubject().groups.groups.map((g) => ({ group: g.name, ...count(findings.filter((f) => g.cves.includes(f.cve))) })),
  };
}

function at(obj: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[k] : undefined), obj);
}

function patched(ip: string, when: string): AttemptResult {
  return {
    ip, port: 443, hostname: null, outcome: 'answered', detail: null, facts: [], detectorRevisions: {}, tlsCert: null, attemptedAt: when,
    record: {
      ip, port: 443, hostname: null, tls: true, product: 'ms-exchange', edition: 'Exchange Server 2016', build: '15.1.2176.9', buildPrecision: 'exact',
      cu: 'CU19', su: null, vulnerable: [], indeterminate: [], evidence: [], scannedAt: when, status: 200, notes: [],
    },
  };
}

testEachBackend('dashboard: national picture = recount = home page; staff only; hosts paged once each; escaped drill-down; SVG chart; campaigns', async ({ database }) => {
  const db = database.db;
  const estate = await buildWebEstate(database);
  const analyst = (await createToken(db, estate.accounts.analyst.email)).token;
  const orgUser = (await createToken(db, estate.accounts.beta.email)).token;
  const app = await buildApp({ db });
  try {
    const call = await serve(app);
    const campaign = estate.campaign.id;
    const beta = estate.orgs.beta;

    // The national picture equals a recount over the findings listing, line by line.
    const summary = await call('GET', '/api/summary', analyst);
    assert.equal(summary.status, 200, summary.text);
    const s = summary.json as { totals: Counts; bySector: Array<Counts & { sector: string }>; byGroup: Array<Counts & { group: string; headline: boolean; cves: string[] }> };
    const expected = await recount(database);
    assert.deepEqual(s.totals, expected.totals);
    assert.deepEqual(s.bySector, expected.bySector);
    assert.deepEqual(s.byGroup.map(({ headline: _h, cves: _c, ...rest }) => rest), expected.byGroup);
    // The estate: 6 scanned hosts with open ProxyLogon findings (one unattributed), a web shell on one, 3 warnings sent.
    assert.equal(s.totals.hostsExposed, 6);
    assert.equal(s.totals.hostsCompromised, 1);
    assert.equal(s.totals.organisationsExposed, 3);
    assert.ok(s.totals.findingsNotified > 0, 'the sent campaign counts as notified');
    assert.deepEqual(s.bySector.map((x) => x.sector), ['(unattributed)', 'energy', 'health', 'water']);
    const proxyLogon = s.byGroup.find((g) => g.group.toLowerCase() === 'proxylogon');
    assert.ok(proxyLogon !== undefined && proxyLogon.hostsExposed === 6, JSON.stringify(s.byGroup));

    // The home page shows the API's numbers (data-metric = the path in the JSON), escaped sector names included.
    const home = await call('GET', '/', analyst);
    assert.equal(home.status, 200, home.text);
    const metrics = [...home.text.matchAll(/data-metric="([^"]+)">([^<]*)</g)].map((m) => [m[1] ?? '', m[2] ?? ''] as const);
    assert.ok(metrics.length >= 7 + 6 * s.byGroup.length, `only ${metrics.length} data-metric elements`);
    for (const [p, shown] of metrics) assert.equal(shown, String(at(s, p)), p);
    assert.match(home.text, /<img class="chart" src="\/api\/charts\/patch-curve\.svg"/);

    // The patch curve: JSON series, and an SVG chart.
    const curve = await call('GET', '/api/stats/patch-curve', analyst);
    assert.equal(curve.status, 200, curve.text);
    const series = (curve.json as { series: Array<{ exposed: number }> }).series;
    assert.ok(series.length >= 1 && (series[series.length - 1]?.exposed ?? 0) > 0, curve.text);
    const svg = await call('GET', '/api/charts/patch-curve.svg', analyst);
    assert.equal(svg.status, 200);
    assert.match(svg.type, /^image\/svg\+xml/);
    assert.match(svg.text, /<svg[\s>]/);
    assert.match(svg.text.trimEnd(), /<\/svg>$/);
    assert.equal((await call('GET', '/api/stats/patch-curve?from=yesterday', analyst)).status, 400);

    // Organisation users: 403 on every staff route (nothing of another organisation is read), sent away from staff pages.
    const host = beta.hosts[0]!;
    for (const [method, path, body] of [
      ['GET', '/api/summary'], ['GET', '/api/stats/patch-curve'], ['GET', '/api/charts/patch-curve.svg'], ['GET', '/api/campaigns'],
      ['GET', `/api/campaigns/${campaign}`], ['GET', `/api/charts/campaigns/${campaign}/burndown.svg`], ['POST', `/api/campaigns/${campaign}/preview`, { org: beta.name }],
      ['GET', '/api/hosts'], ['GET', `/api/hosts/${host.ip}`],
    ] as const) {
      const r = await call(method, path, orgUser, body);
      assert.equal(r.status, 403, `${method} ${path}: ${r.text}`);
      assert.equal((r.json as { error: { code: string } }).error.code, 'TOCSIN_FORBIDDEN');
      assert.ok(!r.text.includes(host.ip) && !r.text.includes('Alpha Hospital'), `${path} leaks nothing`);
    }
    const orgHome = await call('GET', '/', orgUser);
    assert.equal(orgHome.status, 303);
    assert.equal(orgHome.location, '/portal');
    for (const p of ['/hosts', `/hosts/${host.ip}`, '/campaigns', `/campaigns/${campaign}`]) assert.equal((await call('GET', p, orgUser)).status, 403, p);

    // Paging: every host exactly once, in address order, whatever the page size; filters are applied on the server.
    const known = (await db.selectFrom('attributions').select('ip').execute()).map((r) => r.ip);
    for (const limit of [1, 2, 5]) {
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const r = await call('GET', `/api/hosts?limit=${limit}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`, analyst);
        assert.equal(r.status, 200, r.text);
        const page = r.json as { items: Array<{ ip: string }>; nextCursor: string | null };
        assert.ok(page.items.length <= limit);
        seen.push(...page.items.map((h) => h.ip));
        cursor = page.nextCursor;
        assert.ok(++pages < 100, 'paging ends');
      } while (cursor !== null);
      assert.equal(new Set(seen).size, seen.length, `limit ${limit}: no host twice`);
      assert.deepEqual([...seen].sort(), [...known].sort(), `limit ${limit}: every host`);
      for (const o of Object.values(estate.orgs)) for (const h of o.hosts) assert.ok(seen.includes(h.ip), h.ip);
      assert.ok(seen.includes(estate.unattributed.ip));
    }
    const energy = (await call('GET', '/api/hosts?sector=energy', analyst)).json as { items: Array<{ ip: string; org: string }> };
    assert.deepEqual(energy.items.map((h) => h.ip).sort(), beta.hosts.map((h) => h.ip).sort());
    assert.ok(energy.items.every((h) => h.org === beta.name), 'hostile names survive JSON exactly');
    const byCve = (await call('GET', '/api/hosts?cve=CVE-2021-27065&q=198.18.20.', analyst)).json as { items: Array<{ ip: string }> };
    assert.deepEqual(byCve.items.map((h) => h.ip).sort(), ['198.18.20.7', '198.18.20.8']);
    const byOrg = (await call('GET', `/api/hosts?org=${encodeURIComponent(estate.orgs.gamma.name)}`, analyst)).json as { items: Array<{ ip: string }> };
    assert.deepEqual(byOrg.items.map((h) => h.ip), ['198.18.30.9']);
    const stray = (await call('GET', `/api/hosts?sector=${encodeURIComponent('(unattributed)')}`, analyst)).json as { items: Array<{ ip: string; org: string | null }> };
    assert.deepEqual(stray.items.map((h) => [h.ip, h.org]), [[estate.unattributed.ip, null]]);
    assert.equal((await call('GET', '/api/hosts?q=not-an-address', analyst)).status, 400);
    assert.equal((await call('GET', '/api/hosts?cursor=bm9wZQ', analyst)).status, 400);
    const hostsPage = await call('GET', '/hosts?limit=2', analyst);
    assert.equal(hostsPage.status, 200);
    assert.match(hostsPage.text, /rel="next" href="\/hosts\?limit=2&amp;cursor=[^"]+&amp;trail=-"/);

    // The drill-down: the hostile Server banner and the owner's hostile name, as text (escaped), never as markup.
    const detail = await call('GET', `/api/hosts/${host.ip}`, analyst);
    assert.equal(detail.status, 200, detail.text);
    const d = detail.json as { attribution: { org: string; rule: string }; observations: Array<{ evidence: Array<{ excerpt: string }>; verdict: { vulnerable: string[] } }>; findings: Array<{ cve: string; events: Array<{ kind: string }> }> };
    assert.equal(d.attribution.org, beta.name);
    assert.equal(d.attribution.rule, 'network');
    assert.equal(d.observations[0]?.evidence[0]?.excerpt, HOSTILE.alert);
    assert.deepEqual([...(d.observations[0]?.verdict.vulnerable ?? [])].sort(), [...host.vulnerable].sort());
    assert.ok(d.findings.some((f) => f.cve === 'CVE-2021-26855' && f.events.some((e) => e.kind === 'opened') && f.events.some((e) => e.kind === 'notified')));
    const page = await call('GET', `/hosts/${host.ip}`, analyst);
    assert.equal(page.status, 200);
    assert.ok(!page.text.includes(HOSTILE.alert) && !page.text.includes(HOSTILE.script) && !page.text.includes(HOSTILE.img), 'no hostile markup');
    assert.ok(page.text.includes('&lt;script&gt;alert(1)&lt;/script&gt;'), 'the banner is shown as text');
    assert.ok(page.text.includes('Beta Energy &quot;&gt;&lt;img src=x onerror=&quot;window.__xss=2&quot;&gt;'), 'the owner is shown as text');
    const feedHost = await call('GET', `/hosts/${estate.orgs.alpha.hosts[1]!.ip}`, analyst);
    assert.ok(feedHost.text.includes('webshell') && !feedHost.text.includes(HOSTILE.img), 'the feed row and its raw line, escaped');
    assert.equal((await call('GET', '/api/hosts/203.0.113.77', analyst)).status, 404);
    assert.equal((await call('GET', '/api/hosts/not-an-ip', analyst)).status, 400);
    const audit = await db.selectFrom('web_audit').select(['route', 'org_scope', 'status']).where('route', '=', '/api/hosts/:ip').execute();
    assert.ok(audit.some((a) => a.status === 200 && Number(a.org_scope) === beta.id), JSON.stringify(audit));

    // Campaigns: delivery states, per-organisation status, burn-down, and a preview shown as text.
    const list = (await call('GET', '/api/campaigns', analyst)).json as { items: Array<{ id: number; name: string; deliveries: Record<string, number>; messages: number }> };
    const c = list.items.find((x) => x.id === campaign);
    assert.equal(c?.name, estate.campaign.name);
    assert.deepEqual([c?.messages, c?.deliveries['sent']], [3, 3]);
    const one = await call('GET', `/api/campaigns/${campaign}`, analyst);
    assert.equal(one.status, 200, one.text);
    const v = one.json as { organisations: Array<{ org: string; state: string }>; burndown: { findings: number; messagesSent: number; points: unknown[] } };
    assert.deepEqual(v.organisations.map((o) => o.state), ['sent', 'sent', 'sent']);
    assert.ok(v.burndown.findings > 0 && v.burndown.messagesSent === 3 && v.burndown.points.length > 0, one.text);
    assert.equal((await call('GET', '/api/campaigns/999999', analyst)).status, 404);
    const preview = await call('POST', `/api/campaigns/${campaign}/preview`, analyst, { org: beta.name });
    assert.equal(preview.status, 200, preview.text);
    const pv = preview.json as { org: string; subject: string; text: string; html: string; message: string };
    assert.equal(pv.org, beta.name);
    assert.ok(pv.text.includes(host.ip) && pv.html.includes(host.ip) && pv.message.includes('----- HTML part (source) -----'), preview.text);
    assert.doesNotMatch(pv.text, /https:\/\/cert\.test\/ack\//, 'a preview carries no working acknowledgement link');
    const cpage = await call('GET', `/campaigns/${campaign}`, analyst);
    assert.equal(cpage.status, 200);
    assert.ok(cpage.text.includes(`data-api="/api/campaigns/${campaign}/preview"`) && cpage.text.includes('data-result'));
    assert.ok(!cpage.text.includes(HOSTILE.svg) && !cpage.text.includes(HOSTILE.img), 'hostile campaign and organisation names escaped');
    const burn = await call('GET', `/api/charts/campaigns/${campaign}/burndown.svg`, analyst);
    assert.match(burn.text, /<svg[\s>]/);
    const campaignsPage = await call('GET', '/campaigns', analyst);
    assert.match(campaignsPage.text, /data-state="sent">sent <span data-count>3<\/span>/);

    // The OpenAPI document names the path parameters.
    const doc = (await call('GET', '/api/openapi.json', analyst)).json as { paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string }> }>> };
    assert.deepEqual(doc.paths['/api/hosts/{ip}']?.['get']?.parameters?.map((p) => [p.name, p.in]), [['ip', 'path']]);
  } finally {
    await app.close();
  }

  // The cache follows the data: a later scan that sees a fixed build, folded, moves the numbers on the next read.
  const cache = new DashboardCache({ checkEveryMs: 0, staleMs: 0 });
  const before = await nationalSummary(db, { cache });
  assert.equal((await nationalSummary(db, { cache })).computedAt, before.computedAt, 'unchanged data: the cached answer');
  const scans = createScanStore(db, { kbRevision: 'test' });
  const scan = await scans.createScan({ targets: ['198.18.30.9'], ports: [443], options: {} });
  await scans.recordBatch(scan.id, [patched('198.18.30.9', new Date().toISOString())]);
  await scans.finishScan(scan.id, 'finished');
  await foldFindings(db);
  const after = await nationalSummary(db, { cache });
  assert.equal(after.totals.hostsExposed, before.totals.hostsExposed - 1);
  assert.equal(after.totals.findingsPatched, before.totals.findingsPatched + 4);
  assert.deepEqual(after.totals, (await recount(database)).totals);

  // Stale while revalidating: the first read after a change gets the previous answer at once and starts the one
  // recomputation; a later read gets the new numbers.
  const swr = new DashboardCache({ checkEveryMs: 0, staleMs: 600_000 });
  const old = await nationalSummary(db, { cache: swr });
  const scan2 = await scans.createScan({ targets: ['198.18.20.8'], ports: [443], options: {} });
  await scans.recordBatch(scan2.id, [patched('198.18.20.8', new Date().toISOString())]);
  await scans.finishScan(scan2.id, 'finished');
  await foldFindings(db);
  const stale = await nationalSummary(db, { cache: swr });
  assert.deepEqual([stale.computedAt, stale.totals], [old.computedAt, old.totals], 'the previous answer, served while recomputing');
  let fresh = stale;
  for (let i = 0; i < 200 && fresh.computedAt === old.computedAt; i++) {
    await new Promise((r) => setTimeout(r, 50));
    fresh = await nationalSummary(db, { cache: swr });
  }
  assert.equal(fresh.totals.hostsExposed, old.totals.hostsExposed - 1);
  assert.deepEqual(fresh.totals, (await recount(database)).totals);
});
