/**
 * `tocsin serve`'s API (issue 10 §1-2) over real HTTP on 127.0.0.1 (an ephemeral port), on both database backends,
 * with data built by the real services (the exposures estate, plus an organisation with a hostile name). Checks:
 * login ok / wrong password / unknown account / throttled (429 + Retry-After); cookie flags (HttpOnly,
 * SameSite=Strict, Secure only when asked); CSRF missing or wrong -> 403 on POST and DELETE; bearer tokens work,
 * revoked and expired ones do not, disabled accounts neither; an organisation user sees only its own exposures
 * (also across cursor pages) and gets 403 for another organisation; an analyst sees all; audit rows are written
 * for reads and denials; openapi.json is OpenAPI 3.1 with the exposure route; security headers; hostile values
 * survive JSON exactly; the docs page escapes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createConstituencyStore } from '../src/platform/db/constituency-store.js';
import { auditRows } from '../src/platform/db/account-store.js';
import { LoginThrottle, addUser, createToken, disableUser, revokeTokenById } from '../src/services/accounts.js';
import { importConstituency } from '../src/services/constituency.js';
import { buildApp } from '../src/web/app.js';
import { docsPage, escapeHtml } from '../src/web/openapi.js';
import { testEachBackend } from './helpers/db.js';
import { buildEstate } from './helpers/exposures-estate.js';
import type { Database } from '../src/platform/db/connect.js';

const HOSTILE = '<script>window.__xss=1</script>"\'&';
const PASSWORD = 'correct horse battery staple';

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly json: unknown;
  readonly text: string;
}

async function serve(app: FastifyInstance): Promise<(method: string, path: string, o?: { body?: unknown; cookie?: string; csrf?: string; bearer?: string }) => Promise<Answer>> {
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return async (method, path, o = {}) => {
    const headers: Record<string, string> = {};
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    if (o.cookie !== undefined) headers['cookie'] = o.cookie;
    if (o.csrf !== undefined) headers['x-csrf-token'] = o.csrf;
    if (o.bearer !== undefined) headers['authorization'] = `Bearer ${o.bearer}`;
    const res = await fetch(`${base}${path}`, { method, headers, ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }) });
    const text = await res.text();
    let json: unknown = null;
    if ((res.headers.get('content-type') ?? '').startsWith('application/json')) json = JSON.parse(text);
    return { status: res.status, headers: res.headers, json, text };
  };
}

function code(a: Answer): string | undefined {
  const j = a.json as { error?: { code?: string } } | null;
  return j?.error?.code;
}

function cookieOf(a: Answer): string {
  const c = a.headers.get('set-cookie') ?? '';
  return c.split(';')[0] ?? '';
}

async function withApp(database: Database, o: { throttle?: LoginThrottle; secureCookies?: boolean }, fn: (call: Awaited<ReturnType<typeof serve>>) => Promise<void>): Promise<void> {
  const app = await buildApp({ db: database.db, ...o });
  try {
    await fn(await serve(app));
  } finally {
    await app.close();
  }
}

testEachBackend('web: login, cookie flags, CSRF, logout, throttling, bearer tokens', async ({ database }) => {
  const db = database.db;
  await addUser(db, { email: 'Analyst@Example.org', role: 'analyst', password: PASSWORD });
  let clock = Date.parse('2026-01-01T00:00:00Z');
  const throttle = new LoginThrottle({ now: () => clock });
  await withApp(database, { throttle }, async (call) => {
    // Not logged in.
    const anon = await call('GET', '/api/me');
    assert.equal(anon.status, 401);
    assert.equal(code(anon), 'TOCSIN_AUTH_REQUIRED');
    assert.match(anon.headers.get('content-security-policy') ?? '', /default-src 'self'.*frame-ancestors 'none'/);
    assert.equal(anon.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(anon.headers.get('referrer-policy'), 'no-referrer');

    // The e-mail is compared lower-case.
    const ok = await call('POST', '/api/session', { body: { email: 'analyst@example.ORG', password: PASSWORD } });
    assert.equal(ok.status, 200, ok.text);
    const setCookie = ok.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /^tocsin_session=[A-Za-z0-9_-]{40,};/);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    assert.doesNotMatch(setCookie, /Secure/, 'plain HTTP without TOCSIN_WEB_SECURE_COOKIES: no Secure flag');
    const { csrfToken, user } = ok.json as { csrfToken: string; user: { email: string; role: string } };
    assert.deepEqual([user.email, user.role], ['analyst@example.org', 'analyst']);
    const cookie = cookieOf(ok);
    const me = await call('GET', '/api/me', { cookie });
    assert.equal(me.status, 200);
    assert.equal((me.json as { email: string }).email, 'analyst@example.org');

    // CSRF: a state change with the cookie but without (or with a wrong) token is refused and changes nothing.
    const postNoCsrf = await call('POST', '/api/tokens', { cookie, body: { name: 'x' } });
    assert.equal(postNoCsrf.status, 403);
    assert.equal(code(postNoCsrf), 'TOCSIN_CSRF');
    const delNoCsrf = await call('DELETE', '/api/session', { cookie });
    assert.equal(delNoCsrf.status, 403);
    const delWrong = await call('DELETE', '/api/session', { cookie, csrf: `${csrfToken.slice(0, -1)}A` === csrfToken ? 'x' : `${csrfToken.slice(0, -1)}A` });
    assert.equal(delWrong.status, 403);
    assert.equal((await call('GET', '/api/me', { cookie })).status, 200, 'the refused DELETE did not log out');

    // With the token: a POST works (a token for scripts, shown once) ...
    const made = await call('POST', '/api/tokens', { cookie, csrf: csrfToken, body: { name: 'script' } });
    assert.equal(made.status, 200, made.text);
    const scriptToken = (made.json as { token: string }).token;
    assert.equal((await call('GET', '/api/me', { bearer: scriptToken })).status, 200);
    // ... and DELETE logs out: the cookie is cleared and the session is gone on the server.
    const out = await call('DELETE', '/api/session', { cookie, csrf: csrfToken });
    assert.equal(out.status, 200);
    assert.match(out.headers.get('set-cookie') ?? '', /Max-Age=0/);
    assert.equal((await call('GET', '/api/me', { cookie })).status, 401);

    // Wrong password and unknown account: the same answer.
    const bad = await call('POST', '/api/session', { body: { email: 'analyst@example.org', password: 'wrong password!' } });
    const unknown = await call('POST', '/api/session', { body: { email: 'nobody@example.org', password: PASSWORD } });
    assert.deepEqual([bad.status, code(bad)], [401, 'TOCSIN_AUTH_FAILED']);
    assert.deepEqual([unknown.status, code(unknown)], [401, 'TOCSIN_AUTH_FAILED']);
    assert.equal((bad.json as { error: { message: string } }).error.message, (unknown.json as { error: { message: string } }).error.message);
    assert.equal(bad.headers.get('set-cookie'), null);

    // Throttling: 5 failures for the account in 15 minutes -> 429 with Retry-After, even with the right password.
    for (let i = 0; i < 4; i++) assert.equal((await call('POST', '/api/session', { body: { email: 'analyst@example.org', password: `wrong ${i} password` } })).status, 401);
    const throttled = await call('POST', '/api/session', { body: { email: 'analyst@example.org', password: PASSWORD } });
    assert.equal(throttled.status, 429);
    assert.equal(code(throttled), 'TOCSIN_AUTH_THROTTLED');
    assert.ok(Number(throttled.headers.get('retry-after')) > 0);
    // After the window the right password works again.
    clock += 16 * 60_000;
    assert.equal((await call('POST', '/api/session', { body: { email: 'analyst@example.org', password: PASSWORD } })).status, 200);

    // Bearer tokens: a revoked one and an expired one are refused.
    const revoked = await createToken(db, 'analyst@example.org', { name: 'old' });
    assert.equal((await call('GET', '/api/me', { bearer: revoked.token })).status, 200);
    await revokeTokenById(db, revoked.id);
    const r1 = await call('GET', '/api/me', { bearer: revoked.token });
    assert.deepEqual([r1.status, code(r1)], [401, 'TOCSIN_AUTH_REQUIRED']);
    const expired = await createToken(db, 'analyst@example.org', { expires: '1h', now: new Date(Date.now() - 2 * 3600_000) });
    assert.equal((await call('GET', '/api/me', { bearer: expired.token })).status, 401);
    assert.equal((await call('GET', '/api/me', { bearer: 'tocsin_not-a-real-token' })).status, 401);
    // A disabled account's token stops working.
    await disableUser(db, 'analyst@example.org');
    assert.equal((await call('GET', '/api/me', { bearer: scriptToken })).status, 401);
  });
  const stored = await db.selectFrom('api_tokens').select('token_sha256').execute();
  assert.ok(stored.every((t) => /^[0-9a-f]{64}$/.test(t.token_sha256)), 'only digests are stored');
  const hashes = await db.selectFrom('users').select('password_hash').execute();
  assert.ok(hashes.every((h) => h.password_hash.startsWith('$argon2id$')));

  // Secure cookies when asked (TLS-terminating proxy in front).
  await addUser(db, { email: 'a2@example.org', role: 'admin', password: PASSWORD });
  await withApp(database, { secureCookies: true }, async (call) => {
    const ok = await call('POST', '/api/session', { body: { email: 'a2@example.org', password: PASSWORD } });
    assert.match(ok.headers.get('set-cookie') ?? '', /; Secure/);
  });
});

testEachBackend('web: organisation scope in the query, analysts see all, audit rows, OpenAPI, hostile values', async ({ database }) => {
  const db = database.db;
  await buildEstate(database);
  // An organisation with a hostile name owning the otherwise unattributed 203.0.113.5.
  const store = createConstituencyStore(db);
  const csv = `organisation,sector,networks,contact\n"${HOSTILE.replace(/"/g, '""')}",energy,203.0.113.0/24,sec@hostile.example\n`;
  const imported = await importConstituency(store, { files: [{ name: 'hostile.csv', bytes: Buffer.from(csv) }], format: 'auto', who: 'tester' });
  assert.equal(imported.files[0]?.imported, 1, JSON.stringify(imported.files));
  await addUser(db, { email: 'isp@example.org', role: 'org', org: 'example isp', password: PASSWORD });
  await addUser(db, { email: 'analyst@example.org', role: 'analyst', password: PASSWORD });
  const isp = await createToken(db, 'isp@example.org');
  const analyst = await createToken(db, 'analyst@example.org');

  await withApp(database, {}, async (call) => {
    // The organisation user: only its own records, over cursor pages of one.
    const seen: Array<{ ip: string; org: string | null }> = [];
    let cursor: string | null = null;
    for (let i = 0; i < 10; i++) {
      const page: Answer = await call('GET', `/api/exposures?limit=1${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`, { bearer: isp.token });
      assert.equal(page.status, 200, page.text);
      const body = page.json as { items: Array<{ ip: string; org: string | null }>; nextCursor: string | null };
      seen.push(...body.items);
      cursor = body.nextCursor;
      if (cursor === null) break;
    }
    assert.deepEqual(seen.map((r) => r.ip), ['192.0.2.11', '2001:db8:100::25']);
    assert.ok(seen.every((r) => r.org === 'Example ISP'));
    // Its own organisation by name is fine; another one is 403 with no data.
    assert.equal((await call('GET', '/api/exposures?org=EXAMPLE%20ISP', { bearer: isp.token })).status, 200);
    const other = await call('GET', '/api/exposures?org=Customer%20GmbH', { bearer: isp.token });
    assert.deepEqual([other.status, code(other)], [403, 'TOCSIN_FORBIDDEN']);
    assert.doesNotMatch(other.text, /192\.0\.2\.70/);
    const me = await call('GET', '/api/me', { bearer: isp.token });
    assert.deepEqual(me.json, { email: 'isp@example.org', role: 'org', org: 'Example ISP', orgId: (me.json as { orgId: number }).orgId });

    // The analyst: everything, and may filter by any organisation or CVE.
    const all = await call('GET', '/api/exposures', { bearer: analyst.token });
    const items = (all.json as { items: Array<{ ip: string; org: string | null; sources: string[] }> }).items;
    assert.deepEqual(items.map((r) => r.ip), ['192.0.2.11', '192.0.2.70', '198.51.100.7', '203.0.113.5', '2001:db8:100::25']);
    assert.equal((all.json as { nextCursor: string | null }).nextCursor, null);
    // Hostile text goes out as JSON data (served as application/json, nosniff) and comes back exactly.
    assert.match(all.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(items.find((r) => r.ip === '203.0.113.5')?.org, HOSTILE);
    assert.equal(items.find((r) => r.ip === '198.51.100.7')?.org, '=Evil Org');
    const customer = await call('GET', '/api/exposures?org=customer%20gmbh', { bearer: analyst.token });
    assert.deepEqual((customer.json as { items: Array<{ ip: string }> }).items.map((r) => r.ip), ['192.0.2.70']);
    const cve = await call('GET', '/api/exposures?cve=CVE-2021-34473', { bearer: analyst.token });
    const cveIps = (cve.json as { items: Array<{ ip: string }> }).items.map((r) => r.ip);
    assert.ok(cveIps.includes('192.0.2.70') && !cveIps.includes('198.51.100.7'), cveIps.join(','));
    // Bad input: our codes.
    const badLimit = await call('GET', '/api/exposures?limit=0', { bearer: analyst.token });
    assert.deepEqual([badLimit.status, code(badLimit)], [400, 'TOCSIN_ARG_INVALID']);
    const badCursor = await call('GET', '/api/exposures?cursor=AAAA', { bearer: analyst.token });
    assert.deepEqual([badCursor.status, code(badCursor)], [400, 'TOCSIN_ARG_INVALID']);
    const unknownOrg = await call('GET', '/api/exposures?org=Nobody', { bearer: analyst.token });
    assert.deepEqual([unknownOrg.status, code(unknownOrg)], [404, 'TOCSIN_ORG_NOT_FOUND']);
    assert.equal((await call('GET', '/api/nothing-here')).status, 404);

    // OpenAPI 3.1 with the exposure route and its parameters.
    const doc = await call('GET', '/api/openapi.json');
    assert.equal(doc.status, 200);
    const spec = doc.json as { openapi: string; paths: Record<string, Record<string, { parameters?: Array<{ name: string }> }>> };
    assert.equal(spec.openapi, '3.1.0');
    assert.deepEqual(spec.paths['/api/exposures']?.['get']?.parameters?.map((p) => p.name), ['cursor', 'limit', 'cve', 'org', 'format']);
    assert.ok(spec.paths['/api/session']?.['post'] !== undefined);
    const docs = await call('GET', '/api/docs?<script>=1');
    assert.equal(docs.status, 200);
    assert.match(docs.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(docs.text, /\/api\/exposures/);
    assert.doesNotMatch(docs.text, /<script/i);
  });

  // Audit: every read of exposures, the denial too, with the organisation scope.
  const rows = await auditRows(db, 100);
  const ispId = (await db.selectFrom('organisations').select('id').where('name', '=', 'Example ISP').executeTakeFirstOrThrow()).id;
  const ispRows = rows.filter((r) => r.email === 'isp@example.org');
  assert.equal(ispRows.length, 4, JSON.stringify(ispRows));
  assert.ok(ispRows.every((r) => r.route === '/api/exposures' && r.method === 'GET' && r.orgScope === ispId));
  assert.deepEqual(ispRows.map((r) => r.status).sort(), [200, 200, 200, 403]);
  const customerId = (await db.selectFrom('organisations').select('id').where('name', '=', 'Customer GmbH').executeTakeFirstOrThrow()).id;
  assert.ok(rows.some((r) => r.email === 'analyst@example.org' && r.orgScope === customerId && r.status === 200));
  assert.ok(rows.some((r) => r.email === 'analyst@example.org' && r.orgScope === null && r.status === 200));
});

test('web: the docs page escapes what it shows', () => {
  assert.equal(escapeHtml(`<a href="x" onclick='y'>&</a>`), '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  const page = docsPage([{ method: 'GET', url: '/api/x', summary: HOSTILE, auth: true, response: {} }]);
  assert.doesNotMatch(page, /<script/i);
  assert.match(page, /&lt;script&gt;window.__xss=1&lt;\/script&gt;&quot;/);
});

test('web: the login throttle counts per account and per address in a sliding window', () => {
  let now = 0;
  const t = new LoginThrottle({ accountLimit: 2, ipLimit: 3, windowMs: 1000, now: () => now });
  t.fail(['account:a', 'ip:1']);
  t.check(['account:a', 'ip:1']);
  t.fail(['account:a', 'ip:1']);
  assert.throws(() => t.check(['account:a', 'ip:2']), /too many failed logins/);
  t.check(['account:b', 'ip:1']);
  t.fail(['account:b', 'ip:1']);
  assert.throws(() => t.check(['account:c', 'ip:1']), /too many failed logins/, 'the address reached its own limit');
  now = 1001;
  t.check(['account:a', 'ip:1']);
});
