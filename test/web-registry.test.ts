/**
 * The registry editor and the attribution review queue (issue 10 §3) over real HTTP on 127.0.0.1, on both database
 * backends, on the exposures estate (test/helpers/exposures-estate.ts: 203.0.113.5 is observed and unattributed).
 * Checks: an analyst creates an organisation, adds a network and a contact, edits the contact, removes it; every
 * change is in the registry's own trail (constituency_audit) with the account's e-mail; the address inside the new
 * network is attributed to it after the refresh, moves with a manual assignment and back after unassign, as
 * `tocsin whois` (services/attribute.ts whoisAddress) shows; organisation users get 403 on every staff route and
 * page but read their own organisation at /api/my/org; the CSRF token is required; hostile names, sectors,
 * contacts and opt-outs render escaped on /registry and /registry/:id.
 */
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { auditRows } from '../src/platform/db/account-store.js';
import { createConstituencyStore } from '../src/platform/db/constituency-store.js';
import type { Database } from '../src/platform/db/connect.js';
import { addUser, createToken } from '../src/services/accounts.js';
import { whoisAddress } from '../src/services/attribute.js';
import { buildApp } from '../src/web/app.js';
import { testEachBackend } from './helpers/db.js';
import { buildEstate } from './helpers/exposures-estate.js';

const PASSWORD = 'correct horse battery staple';
const ANALYST = 'analyst@example.org';
const HOSTILE_NAME = '<script>window.__xss=1</script>"\'&';
const HOSTILE_SECTOR = '<img src=x onerror="window.__xss=2">';
const HOSTILE_CONDITION = '"><svg onload=window.__xss=3>';
/** The e-mail grammar allows ' and & in the local part: enough to break an unquoted or badly escaped attribute. */
const HOSTILE_EMAIL = "o'hara&co@harbour.example";

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly json: unknown;
  readonly text: string;
}
type Call = (method: string, path: string, o?: { body?: unknown; cookie?: string; csrf?: string; bearer?: string }) => Promise<Answer>;

async function withApp(database: Database, fn: (call: Call) => Promise<void>): Promise<void> {
  const app: FastifyInstance = await buildApp({ db: database.db });
  try {
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    await fn(async (method, path, o = {}) => {
      const headers: Record<string, string> = {};
      if (o.body !== undefined) headers['content-type'] = 'application/json';
      if (o.cookie !== undefined) headers['cookie'] = o.cookie;
      if (o.csrf !== undefined) headers['x-csrf-token'] = o.csrf;
      if (o.bearer !== undefined) headers['authorization'] = `Bearer ${o.bearer}`;
      const res = await fetch(`${base}${path}`, { method, headers, redirect: 'manual', ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }) });
      const text = await res.text();
      const json: unknown = (res.headers.get('content-type') ?? '').startsWith('application/json') ? JSON.parse(text) : null;
      return { status: res.status, headers: res.headers, json, text };
    });
  } finally {
    await app.close();
  }
}

const code = (a: Answer): string | undefined => (a.json as { error?: { code?: string } } | null)?.error?.code;

async function login(call: Call, email: string): Promise<{ cookie: string; csrf: string }> {
  const r = await call('POST', '/api/session', { body: { email, password: PASSWORD } });
  assert.equal(r.status, 200, r.text);
  return { cookie: (r.headers.get('set-cookie') ?? '').split(';')[0] ?? '', csrf: (r.json as { csrfToken: string }).csrfToken };
}

interface Org {
  id: number;
  name: string;
  sector: string | null;
  country: string | null;
  networks: Array<{ network: string; layer: string }>;
  domains: Array<{ domain: string }>;
  contacts: Array<{ role: string; email: string; language: string | null; layer: string }>;
  optOuts: Array<{ condition: string }>;
}

async function setup(database: Database): Promise<{ orgToken: string; analystToken: string }> {
  await buildEstate(database);
  await addUser(database.db, { email: ANALYST, role: 'analyst', password: PASSWORD });
  await addUser(database.db, { email: 'isp@example.org', role: 'org', org: 'Example ISP', password: PASSWORD });
  return { orgToken: (await createToken(database.db, 'isp@example.org')).token, analystToken: (await createToken(database.db, ANALYST)).token };
}

testEachBackend('web registry: create, add network and contact, edit and remove the contact, audit trail, attribution follows, CSRF, org users 403', async ({ database }) => {
  const db = database.db;
  const { orgToken } = await setup(database);
  await withApp(database, async (call) => {
    const { cookie, csrf } = await login(call, ANALYST);
    const as = { cookie, csrf };

    // CSRF: a cookie without the token changes nothing.
    const noCsrf = await call('POST', '/api/orgs', { cookie, body: { name: 'Harbour Authority' } });
    assert.deepEqual([noCsrf.status, code(noCsrf)], [403, 'TOCSIN_CSRF']);
    const none = await call('GET', '/api/orgs?q=harbour', { cookie });
    assert.equal((none.json as { total: number }).total, 0, 'the refused POST created nothing');

    // Before: 203.0.113.5 waits in the review queue.
    const before = await call('GET', '/api/attribution/review', { cookie });
    assert.equal(before.status, 200, before.text);
    assert.ok((before.json as { items: Array<{ ip: string; kind: string }> }).items.some((r) => r.ip === '203.0.113.5' && r.kind === 'unattributed'), before.text);

    const made = await call('POST', '/api/orgs', { ...as, body: { name: 'Harbour Authority', sector: 'transport', country: 'de' } });
    assert.equal(made.status, 200, made.text);
    const id = (made.json as { id: number }).id;
    assert.deepEqual([(made.json as { org: Org }).org.country, (made.json as { org: Org }).org.sector], ['DE', 'transport']);
    const dup = await call('POST', '/api/orgs', { ...as, body: { name: 'HARBOUR authority' } });
    assert.deepEqual([dup.status, code(dup)], [409, 'TOCSIN_ORG_EXISTS']);
    const listed = await call('GET', '/api/orgs?q=HARB&sector=Transport', { cookie });
    assert.deepEqual((listed.json as { items: Array<{ id: number }> }).items.map((o) => o.id), [id]);
    assert.ok((listed.json as { sectors: string[] }).sectors.includes('telecom'));
    const paged = await call('GET', '/api/orgs?limit=2', { cookie });
    assert.deepEqual([(paged.json as { items: unknown[] }).items.length, (paged.json as { nextOffset: number | null }).nextOffset, (paged.json as { total: number }).total], [2, 2, 4]);

    const net = await call('POST', `/api/orgs/${id}/entries`, { ...as, body: { kind: 'network', value: '203.0.113.0/24' } });
    assert.equal(net.status, 200, net.text);
    assert.equal((net.json as { added: boolean }).added, true);
    const again = await call('POST', `/api/orgs/${id}/entries`, { ...as, body: { kind: 'network', value: '203.0.113.0/24' } });
    assert.equal((again.json as { added: boolean }).added, false, 'the same manual network twice changes nothing');
    const badNet = await call('POST', `/api/orgs/${id}/entries`, { ...as, body: { kind: 'network', value: 'not-a-network' } });
    assert.deepEqual([badNet.status, code(badNet)], [400, 'TOCSIN_ARG_INVALID']);
    const contact = await call('POST', `/api/orgs/${id}/entries`, { ...as, body: { kind: 'contact', role: 'security', email: 'soc@harbour.example', language: 'en' } });
    assert.equal(contact.status, 200, contact.text);

    // The refresh behind the review queue attributes the address to the new organisation by its network.
    const afterNet = await call('GET', '/api/attribution/review', { cookie });
    assert.ok(!(afterNet.json as { items: Array<{ ip: string }> }).items.some((r) => r.ip === '203.0.113.5'), afterNet.text);
    let who = await whoisAddress(db, { ip: '203.0.113.5' });
    assert.deepEqual([who.stored?.org, who.stored?.rule], ['Harbour Authority', 'network']);

    // Edit the contact: a new address and language ...
    const edited = await call('PATCH', `/api/orgs/${id}/contacts`, { ...as, body: { role: 'security', email: 'soc@harbour.example', set: { email: 'cert@harbour.example', language: 'de' } } });
    assert.equal(edited.status, 200, edited.text);
    assert.deepEqual((edited.json as { org: Org }).org.contacts.map((c) => [c.role, c.email, c.language, c.layer]), [['security', 'cert@harbour.example', 'de', 'manual']]);
    // ... then, as the page's edit form sends it (every field, emptied ones kept), only its language (cleared).
    const formBody = { role: 'security', email: 'CERT@harbour.example', set: { role: 'security', email: 'cert@harbour.example', language: '', pgp: '' } };
    const cleared = await call('PATCH', `/api/orgs/${id}/contacts`, { ...as, body: formBody });
    assert.equal(cleared.status, 200, cleared.text);
    assert.deepEqual((cleared.json as { org: Org }).org.contacts.map((c) => [c.email, c.language]), [['cert@harbour.example', null]]);
    const noSuch = await call('PATCH', `/api/orgs/${id}/contacts`, { ...as, body: { role: 'abuse', email: 'cert@harbour.example', set: { language: 'fr' } } });
    assert.deepEqual([noSuch.status, code(noSuch)], [404, 'TOCSIN_ORG_ENTRY_NOT_FOUND']);

    // Organisation fields, by id and by name.
    const patched = await call('PATCH', `/api/orgs/${encodeURIComponent('harbour AUTHORITY')}`, { ...as, body: { sector: 'ports', country: '' } });
    assert.equal(patched.status, 200, patched.text);
    assert.deepEqual([(patched.json as { changed: boolean }).changed, (patched.json as { org: Org }).org.sector, (patched.json as { org: Org }).org.country], [true, 'ports', null]);
    const shown = await call('GET', `/api/orgs/${id}`, { cookie });
    assert.deepEqual([(shown.json as Org).name, (shown.json as Org).networks.map((n) => n.network)], ['Harbour Authority', ['203.0.113.0/24']]);
    assert.equal((await call('GET', '/api/orgs/999999', { cookie })).status, 404);

    // Remove the contact (body), and a domain the way app.js does it (no body: the query says which).
    const removed = await call('DELETE', `/api/orgs/${id}/entries`, { ...as, body: { kind: 'contact', role: 'security', email: 'cert@harbour.example' } });
    assert.equal(removed.status, 200, removed.text);
    assert.deepEqual([(removed.json as { removed: number }).removed, (removed.json as { org: Org }).org.contacts.length], [1, 0]);
    assert.equal((await call('POST', `/api/orgs/${id}/entries`, { ...as, body: { kind: 'domain', value: 'Harbour.Example' } })).status, 200);
    const byQuery = await call('DELETE', `/api/orgs/${id}/entries?kind=domain&value=harbour.example`, as);
    assert.equal(byQuery.status, 200, byQuery.text);
    assert.deepEqual((byQuery.json as { org: Org }).org.domains, []);
    const gone = await call('DELETE', `/api/orgs/${id}/entries`, { ...as, body: { kind: 'contact', role: 'security', email: 'cert@harbour.example' } });
    assert.deepEqual([gone.status, code(gone)], [404, 'TOCSIN_ORG_ENTRY_NOT_FOUND']);
    const noKind = await call('DELETE', `/api/orgs/${id}/entries`, as);
    assert.deepEqual([noKind.status, code(noKind)], [400, 'TOCSIN_ARG_INVALID']);

    // Manual assignment beats the network; unassign brings the network's answer back (as `tocsin whois` shows).
    const assigned = await call('POST', '/api/attribution/assign', { ...as, body: { target: '203.0.113.5', org: 'customer gmbh', note: 'hand-over <b>' } });
    assert.equal(assigned.status, 200, assigned.text);
    const a = assigned.json as { target: string; createdBy: string; note: string; attribution: { org: string; rule: string } };
    assert.deepEqual([a.target, a.createdBy, a.note, a.attribution.org, a.attribution.rule], ['203.0.113.5/32', ANALYST, 'hand-over <b>', 'Customer GmbH', 'manual']);
    who = await whoisAddress(db, { ip: '203.0.113.5' });
    assert.deepEqual([who.stored?.org, who.stored?.rule, who.attribution.rule], ['Customer GmbH', 'manual', 'manual']);
    const badTarget = await call('POST', '/api/attribution/assign', { ...as, body: { target: '203.0.113.5/24', org: 'Customer GmbH' } });
    assert.deepEqual([badTarget.status, code(badTarget)], [400, 'TOCSIN_ARG_INVALID'], 'host bits set: refused, never widened');
    const unassigned = await call('POST', '/api/attribution/unassign', { ...as, body: { target: '203.0.113.5' } });
    assert.equal(unassigned.status, 200, unassigned.text);
    who = await whoisAddress(db, { ip: '203.0.113.5' });
    assert.deepEqual([who.stored?.org, who.stored?.rule], ['Harbour Authority', 'network']);
    assert.equal((await call('POST', '/api/attribution/unassign', { ...as, body: { target: '203.0.113.5' } })).status, 404);

    // The registry's own trail: every change, authored by the logged-in account.
    const trail = await createConstituencyStore(db).audit({ org: 'Harbour Authority' });
    assert.ok(trail.length >= 8, JSON.stringify(trail));
    assert.ok(trail.every((r) => r.who === ANALYST), JSON.stringify(trail.map((r) => r.who)));
    const kinds = new Set(trail.map((r) => `${r.action} ${r.entity}`));
    for (const k of ['create organisation', 'create network', 'create contact', 'delete contact', 'update organisation', 'create domain', 'delete domain']) assert.ok(kinds.has(k), k);
    const viaApi = await call('GET', `/api/orgs/${id}/audit`, { cookie });
    assert.deepEqual((viaApi.json as { items: Array<{ id: number }> }).items.map((r) => r.id), trail.map((r) => r.id));

    // Organisation users: 403 on every staff route, nothing changed; their own entry is readable.
    const denied: Array<[string, string, unknown?]> = [
      ['GET', '/api/orgs'], ['POST', '/api/orgs', { name: 'Sneaky' }], ['GET', `/api/orgs/${id}`], ['PATCH', `/api/orgs/${id}`, { sector: 'x' }],
      ['GET', `/api/orgs/${id}/audit`], ['POST', `/api/orgs/${id}/entries`, { kind: 'domain', value: 'sneaky.example' }],
      ['DELETE', `/api/orgs/${id}/entries`, { kind: 'network', value: '203.0.113.0/24' }],
      ['PATCH', `/api/orgs/${id}/contacts`, { role: 'security', email: 'x@y.example', set: { language: 'de' } }],
      ['GET', '/api/attribution/review'], ['POST', '/api/attribution/assign', { target: '203.0.113.5', org: 'Example ISP' }],
      ['POST', '/api/attribution/unassign', { target: '203.0.113.5' }],
    ];
    for (const [method, url, body] of denied) {
      const r = await call(method, url, { bearer: orgToken, ...(body === undefined ? {} : { body }) });
      assert.deepEqual([r.status, code(r)], [403, 'TOCSIN_FORBIDDEN'], `${method} ${url}: ${r.text}`);
    }
    assert.equal((await call('GET', `/api/orgs/${id}`, { cookie })).status, 200);
    assert.equal(((await call('GET', '/api/orgs?q=sneaky', { cookie })).json as { total: number }).total, 0);
    assert.deepEqual(((await call('GET', `/api/orgs/${id}`, { cookie })).json as Org).networks.map((n) => n.network), ['203.0.113.0/24']);
    for (const page of ['/registry', `/registry/${id}`, '/registry/new', '/review']) {
      const r = await call('GET', page, { bearer: orgToken });
      assert.equal(r.status, 403, page);
      assert.doesNotMatch(r.text, /Harbour Authority/);
    }
    const mine = await call('GET', '/api/my/org', { bearer: orgToken });
    assert.equal(mine.status, 200, mine.text);
    assert.deepEqual([(mine.json as Org).name, (mine.json as Org).networks.map((n) => n.network)], ['Example ISP', ['192.0.2.0/24', '2001:db8:100::/48']]);
    assert.deepEqual((mine.json as Org).contacts.map((c) => c.email), ['noc@example-isp.net']);
    assert.equal((await call('GET', '/api/my/org', { cookie })).status, 403, 'staff have no organisation of their own');
    assert.equal((await call('GET', '/api/orgs')).status, 401);

    // The OpenAPI document has the operations (with their JSON schemas).
    const spec = (await call('GET', '/api/openapi.json')).json as { paths: Record<string, Record<string, { requestBody?: unknown }>> };
    for (const p of ['/api/orgs', '/api/attribution/review', '/api/attribution/assign', '/api/my/org']) assert.ok(spec.paths[p] !== undefined, p);
    const entriesPath = spec.paths['/api/orgs/:id/entries'] ?? spec.paths['/api/orgs/{id}/entries'];
    assert.ok(entriesPath?.['post']?.requestBody !== undefined && entriesPath['delete'] !== undefined);
  });

  // web_audit: the changes with the organisation they touched, and the denials.
  const rows = await auditRows(db, 500);
  const harbour = await createConstituencyStore(db).getOrg('Harbour Authority');
  assert.ok(rows.some((r) => r.email === ANALYST && r.route === '/api/orgs/:id/entries' && r.method === 'POST' && r.orgScope === harbour?.id && r.status === 200));
  // The CSRF refusal is audited too (before the session is trusted, so without an account).
  assert.ok(rows.some((r) => r.route === '/api/orgs' && r.method === 'POST' && r.status === 403 && r.email === null), 'the CSRF refusal is audited');
  assert.equal(rows.filter((r) => r.email === 'isp@example.org' && r.status === 403 && r.route.startsWith('/api/')).length, 11);
});

testEachBackend('web registry pages: hostile names, sectors, contacts and opt-outs are escaped; forms carry their hooks', async ({ database }) => {
  await setup(database);
  await withApp(database, async (call) => {
    const { cookie, csrf } = await login(call, ANALYST);
    const as = { cookie, csrf };
    const made = await call('POST', '/api/orgs', { ...as, body: { name: HOSTILE_NAME, sector: HOSTILE_SECTOR } });
    assert.equal(made.status, 200, made.text);
    const id = (made.json as { id: number }).id;
    assert.equal((made.json as { org: Org }).org.name, HOSTILE_NAME, 'stored exactly as given');
    for (const body of [
      { kind: 'contact', role: 'abuse', email: HOSTILE_EMAIL },
      { kind: 'opt-out', condition: HOSTILE_CONDITION, expires: 'never' },
      // Space with no observations: 203.0.113.5 stays in the review queue for /review below.
      { kind: 'network', value: '100.64.0.0/24' },
    ]) {
      const r = await call('POST', `/api/orgs/${id}/entries`, { ...as, body });
      assert.equal(r.status, 200, r.text);
    }
    // The hostile name is also a parent and the subject of an edit (the history shows before/after values).
    assert.equal((await call('PATCH', `/api/orgs/${id}`, { ...as, body: { size: '<i>large</i>' } })).status, 200);

    const raw = [HOSTILE_NAME, '<script>window', HOSTILE_SECTOR, '<img', HOSTILE_CONDITION, '<svg', '<i>large', `"${HOSTILE_EMAIL}"`];
    const pages = ['/registry', `/registry?q=${encodeURIComponent('<script>')}`, `/registry?sector=${encodeURIComponent(HOSTILE_SECTOR)}`, `/registry/${id}`, '/review'];
    for (const url of pages) {
      const r = await call('GET', url, { cookie });
      assert.equal(r.status, 200, `${url}: ${r.text.slice(0, 300)}`);
      assert.match(r.headers.get('content-type') ?? '', /^text\/html/);
      for (const x of raw) assert.ok(!r.text.includes(x), `${url} contains ${x} unescaped`);
      assert.equal((r.text.match(/<script/gi) ?? []).length, 1, `${url}: only the app's own script tag`);
    }
    const list = await call('GET', '/registry', { cookie });
    assert.ok(list.text.includes('&lt;script&gt;window.__xss=1&lt;/script&gt;&quot;&#39;&amp;'), 'the name is shown, escaped');
    assert.ok(list.text.includes(`href="/registry/${id}"`));
    assert.match(list.text, /data-form="filter-orgs"/);
    const filtered = await call('GET', `/registry?sector=${encodeURIComponent(HOSTILE_SECTOR)}`, { cookie });
    assert.equal((filtered.text.match(/<tr data-org=/g) ?? []).length, 1, 'the sector filter keeps one organisation');

    const detail = await call('GET', `/registry/${id}`, { cookie });
    assert.ok(detail.text.includes(`data-contact="o&#39;hara&amp;co@harbour.example"`), 'the contact row hook, escaped');
    assert.ok(detail.text.includes('&quot;&gt;&lt;svg onload=window.__xss=3&gt;'), 'the opt-out, escaped');
    for (const f of ['edit-org', 'add-network', 'add-asn', 'add-domain', 'add-contact', 'add-opt-out', 'edit-contact', 'remove-contact', 'remove-network', 'remove-opt-out']) {
      assert.ok(detail.text.includes(`data-form="${f}"`), f);
    }
    // The remove button of the contact says which one in its query (app.js sends no body with DELETE), and works.
    const m = /data-form="remove-contact" data-api="([^"]+)"/.exec(detail.text);
    assert.ok(m?.[1] !== undefined);
    const api = m[1].replace(/&amp;/g, '&');
    assert.ok(api.startsWith(`/api/orgs/${id}/entries?`), api);
    const del = await call('DELETE', api, as);
    assert.equal(del.status, 200, del.text);
    assert.deepEqual((del.json as { org: Org }).org.contacts, []);
    assert.ok(!(await call('GET', `/registry/${id}`, { cookie })).text.includes('data-contact='), 'the contact row is gone');

    const created = await call('GET', '/registry/new', { cookie });
    assert.match(created.text, /data-form="new-org" data-api="\/api\/orgs" data-method="POST" data-redirect="\/registry\/\{id\}"/);
    const review = await call('GET', '/review', { cookie });
    assert.match(review.text, /<tr data-ip="203\.0\.113\.5" data-kind="unattributed">/);
    assert.match(review.text, /data-form="assign"/);
    assert.equal((await call('GET', '/registry/no%20such%20org', { cookie })).status, 404);
  });
});
