/**
 * Hostile content in a real browser (issue 10 §7): the estate of test/helpers/web-estate.ts puts script and HTML
 * payloads into organisation names, hostnames, banners (the lab's `<script>alert(1)</script>` Server header) and a
 * campaign name; every page the app serves (read from its route table, so pages added later are visited too) is
 * opened as an administrator and as an organisation user whose organisation has a hostile name, with its path
 * parameters filled from the estate and, once more, with a payload. On each page: the `window.__xss` probe was never
 * written, no dialog opened, no Content-Security-Policy violation (an injected inline script would be one), no
 * request left the test server, and the CSP header allows no 'unsafe-inline' or 'unsafe-eval'. Where the payloads
 * are shown (the organisation user's name in the header; lists of organisations), they are visible as text, once
 * escaped (not double-escaped).
 *
 * One browser, one data set, one database backend (the embedded one) to keep CI time down.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Browser } from 'playwright-core';
import { openDatabase, type Database } from '../src/platform/db/connect.js';
import { browserSkip, launchBrowser, login, openTab, pagePaths, screenshot, serve, type Served, type Tab } from './helpers/browser.js';
import { freshDatabase, SHARED_TEST_HOME, type FreshDatabase } from './helpers/db.js';
import { HOSTILE, type Account, type EstateOrg, type WebEstate, buildWebEstate } from './helpers/web-estate.js';

const skip = browserSkip();

/** window.__xss once the page has stopped navigating (a redirect after login may still be under way). */
async function settledProbe(tab: Tab): Promise<unknown> {
  for (let i = 0; ; i++) {
    try {
      await tab.page.waitForLoadState('load');
      return await tab.page.evaluate('window.__xss');
    } catch (e) {
      if (i >= 20 || !/context was destroyed|navigat/i.test(String(e))) throw e;
    }
  }
}

async function waitForCookie(tab: Tab, name: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await tab.context.cookies()).some((c) => c.name === name && c.value !== '')) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`no ${name} cookie after logging in`);
}

/** A payload as a path parameter: an error page that echoes it must escape it too. */
const HOSTILE_PARAM = '<script>window.__xss=9</script>';

describe('web: hostile content on every page', { skip }, () => {
  let fresh: FreshDatabase;
  let database: Database;
  let estate: WebEstate;
  let served: Served;
  let browser: Browser;
  const tabs: Tab[] = [];

  before(async () => {
    fresh = await freshDatabase('embedded');
    database = await openDatabase({ home: SHARED_TEST_HOME, databaseUrl: fresh.url });
    estate = await buildWebEstate(database);
    served = await serve(database);
    browser = await launchBrowser();
  });
  after(async () => {
    for (const t of tabs) await t.close().catch(() => undefined);
    await browser?.close();
    await served?.close();
    await database?.close();
    await fresh?.drop();
  });

  /** Concrete URLs for a page path: each parameter filled with estate values the viewer may see, then with a payload. */
  function urlsFor(path: string, viewer: Account): string[] {
    const orgs: EstateOrg[] = viewer.org === null ? Object.values(estate.orgs) : [viewer.org];
    const segs = path.split('/');
    const params = segs.map((s, i) => (s.startsWith(':') ? i : -1)).filter((i) => i >= 0);
    if (params.length === 0) return [path];
    const valuesFor = (i: number): string[] => {
      const name = (segs[i] ?? '').slice(1).toLowerCase();
      const before = (segs[i - 1] ?? '').toLowerCase();
      if (/ip|addr|host/.test(name)) return [...orgs.flatMap((o) => o.hosts.map((h) => h.ip)), ...(viewer.org === null ? [estate.unattributed.ip] : [])];
      if (/org|registry/.test(name) || /^(orgs?|registry|organisations?)$/.test(before)) return orgs.map((o) => String(o.id));
      if (/campaign/.test(name) || /^campaigns?$/.test(before)) return [String(estate.campaign.id)];
      return ['1', '2', '3'];
    };
    const fill = (choose: (i: number) => string): string => segs.map((s, i) => (params.includes(i) ? encodeURIComponent(choose(i)) : s)).join('/');
    const out = new Set<string>();
    const longest = Math.max(...params.map((i) => valuesFor(i).length));
    for (let k = 0; k < longest; k++) out.add(fill((i) => { const v = valuesFor(i); return v[k % v.length] ?? '1'; }));
    out.add(fill(() => HOSTILE_PARAM));
    return [...out];
  }

  async function visitAll(t: TestContext, viewer: Account, label: string): Promise<{ visited: number; texts: Map<string, string> }> {
    const tab = await openTab(browser, served.base);
    tabs.push(tab);
    const next = viewer.org === null ? '/' : '/portal';
    await login(tab, viewer, next);
    const paths = pagePaths(served);
    assert.ok(paths.includes('/') && paths.includes('/login'), `the page list was read from the route table: ${paths.join(' ')}`);
    const problems: string[] = [];
    const texts = new Map<string, string>();
    let visited = 0;
    const shot = new Set<string>();
    for (const path of paths) {
      for (const url of urlsFor(path, viewer)) {
        const before = { xss: tab.events.xss.length, dialogs: tab.events.dialogs.length, csp: tab.events.cspViolations.length, blocked: tab.events.blocked.length, errors: tab.events.pageErrors.length };
        const started = performance.now();
        // 'load' waits for images, so a payload's onerror on a broken image has run by then.
        const res = await tab.page.goto(`${served.base}${url}`, { waitUntil: 'load' });
        visited++;
        const at = `${label} ${url} (${res?.status() ?? 'no answer'})`;
        t.diagnostic(`${at} in ${Math.round(performance.now() - started)} ms`);
        const csp = (await res?.allHeaders())?.['content-security-policy'] ?? '';
        if (res !== null && (res.headers()['content-type'] ?? '').startsWith('text/html')) {
          if (csp === '') problems.push(`${at}: no Content-Security-Policy header`);
          if (/unsafe-inline|unsafe-eval/.test(csp)) problems.push(`${at}: CSP allows ${csp}`);
          if (!/(default-src|script-src) 'self'/.test(csp)) problems.push(`${at}: CSP does not restrict scripts: ${csp}`);
        }
        const probe: unknown = await tab.page.evaluate('window.__xss');
        if (probe !== undefined) problems.push(`${at}: window.__xss = ${String(probe)}`);
        for (const [what, list, n] of [['xss', tab.events.xss, before.xss], ['dialog', tab.events.dialogs, before.dialogs], ['CSP violation', tab.events.cspViolations, before.csp],
          ['request outside the test server', tab.events.blocked, before.blocked], ['page error', tab.events.pageErrors, before.errors]] as const) {
          if (list.length > n) problems.push(`${at}: ${what}: ${list.slice(n).join(' | ')}`);
        }
        const text = await tab.page.locator('body').innerText().catch(() => '');
        texts.set(url, text);
        // Escaped once: a double-escaped payload shows its entities as text.
        if (/&lt;(script|img|svg)|&quot;&gt;/.test(text)) problems.push(`${at}: a payload was escaped twice: ${text.slice(0, 200)}`);
        // The layout names the logged-in organisation in the header (pages without a login, such as /login, have none).
        const who = tab.page.locator('header .who');
        if (viewer.org !== null && res?.status() === 200 && (new URL(tab.page.url()).pathname.startsWith('/portal') || await who.count() > 0)
          && !(await who.innerText().catch(() => '')).includes(viewer.org.name)) {
          problems.push(`${at}: the header does not show the organisation's name as text`);
        }
        if (!shot.has(path)) {
          shot.add(path);
          await screenshot(tab.page, `hostile-${label}-${url === '/' ? 'home' : url}`, { fullPage: false });
        }
      }
    }
    assert.deepEqual(problems, [], `${problems.length} problem(s) over ${visited} page(s)`);
    return { visited, texts };
  }

  test('as an administrator: no payload runs on any page; the CSP has no unsafe-inline; names are shown as text', async (t) => {
    const { visited, texts } = await visitAll(t, estate.accounts.admin, 'staff');
    assert.ok(visited >= 2);
    // A host page shows the host's hostile hostname, banner and owner as text.
    const beta = estate.orgs.beta.hosts[0]!;
    const host = texts.get(`/hosts/${beta.ip}`);
    if (host !== undefined) {
      for (const v of [beta.hostname ?? '', beta.banner, estate.orgs.beta.name]) assert.ok(host.includes(v), `/hosts/${beta.ip} shows ${JSON.stringify(v)} as text`);
    }
    // Pages that list the organisations show the hostile names as they are.
    for (const listing of ['/registry', '/hosts']) {
      const text = texts.get(listing);
      if (text === undefined) continue;
      for (const o of Object.values(estate.orgs)) {
        if (listing === '/registry' || o.hosts.length > 0) assert.ok(text.includes(o.name), `${listing} shows ${JSON.stringify(o.name)} as text`);
      }
    }
  });

  test('as the user of an organisation with a hostile name: no payload runs on any page, the name is shown as text', async (t) => {
    const beta = estate.accounts.beta;
    assert.ok(beta.org !== null && beta.org.name.includes(HOSTILE.img));
    const { visited } = await visitAll(t, beta, 'org');
    assert.ok(visited >= 2);
  });

  test('control: the probes do catch a payload that runs (so a clean page means something)', async () => {
    const tab = await openTab(browser, served.base);
    tabs.push(tab);
    // No server and no CSP here: about:blank with the payloads set as its content.
    await tab.page.setContent(`<p>${HOSTILE.img}</p>${HOSTILE.alert}`);
    await tab.page.waitForFunction('window.__xss === 2');
    assert.deepEqual(tab.events.xss, ['2']);
    assert.deepEqual(tab.events.dialogs, ['alert: 1']);
    await tab.close();
  });

  async function loginWithNext(next: string): Promise<Tab> {
    const tab = await openTab(browser, served.base);
    tabs.push(tab);
    await tab.page.goto(`${served.base}/login?next=${encodeURIComponent(next)}`);
    await tab.page.locator('#email').fill(estate.accounts.analyst.email);
    await tab.page.locator('#password').fill(estate.accounts.analyst.password);
    await tab.page.locator('form[data-api="/api/session"] button[type="submit"]').click();
    // Logged in (the session cookie is set) whatever happens to the redirect; then wait for whatever navigation follows.
    await waitForCookie(tab, 'tocsin_session');
    return tab;
  }

  test('a crafted ?next= after login neither runs script nor leaves the site', async () => {
    for (const next of ['javascript:window.__xss=7', '//evil.example/', 'https://evil.example/', '/%2F/evil.example/']) {
      const tab = await loginWithNext(next);
      assert.equal(await settledProbe(tab), undefined, next);
      assert.equal(new URL(tab.page.url()).origin, served.base, `${next}: stayed on the site`);
      assert.deepEqual([tab.events.xss, tab.events.blocked, tab.events.dialogs], [[], [], []], next);
      await tab.close();
    }
  });

  // Found by this suite: app.js accepted any ?next= that starts with one '/', but browsers read a backslash as a slash,
  // so '/\evil.example' is '//evil.example', another site (an open redirect after login). app.js now resolves next
  // against the page's origin and follows it only when the origin is unchanged.
  test('a ?next= of /\\evil.example does not leave the site after login', async () => {
    const tab = await loginWithNext('/\\evil.example/');
    assert.equal(await settledProbe(tab), undefined);
    assert.deepEqual(tab.events.blocked, [], 'the browser tried to leave the site');
    assert.equal(new URL(tab.page.url()).origin, served.base);
    await tab.close();
  });
});
