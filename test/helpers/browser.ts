/**
 * A real browser for the web suites (issue 10 §7): Debian's chromium (/usr/bin/chromium, installed by .ci/run)
 * driven by playwright-core, headless, with background networking off. Nothing leaves loopback: every request a
 * page makes that is not to the test server's own 127.0.0.1 origin is aborted (and recorded, so a test can assert
 * there were none). Per tab it collects uncaught page errors, console errors, Content-Security-Policy violations
 * (a 'securitypolicyviolation' listener added by an init script, which the CDP injects outside the page's CSP),
 * writes to the `window.__xss` probe, and dialogs (alert/confirm/prompt: dismissed and recorded).
 *
 * Outside CI a machine without /usr/bin/chromium skips the browser tests with the reason; with CI=true they run
 * and fail, because .ci/run installs chromium.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { Database } from '../../src/platform/db/connect.js';
import { buildApp } from '../../src/web/app.js';
import type { Account } from './web-estate.js';

export const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SCREENSHOT_DIR = join(ROOT, 'test-artifacts', 'screenshots');

/** Why the browser tests are skipped here, or false if they run. Never skips in CI. */
export function browserSkip(): string | false {
  if (existsSync(CHROMIUM)) return false;
  if (process.env.CI === 'true') return false; // the launch then fails the test: CI must have chromium
  return `${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it in CI)`;
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-default-apps', '--disable-sync',
      '--no-first-run', '--disable-features=Translate,MediaRouter,OptimizationHints',
    ],
  });
}

/** The web app on an ephemeral 127.0.0.1 port. */
export interface Served {
  readonly app: FastifyInstance;
  /** http://127.0.0.1:PORT (no trailing slash). */
  readonly base: string;
  close(): Promise<void>;
  /** Whether the app serves `METHOD url` (an API route or a page), so a flow can wait for its page to be built. */
  has(method: string, url: string): boolean;
}

export async function serve(database: Database): Promise<Served> {
  const app = await buildApp({ db: database.db });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    app, base: base.replace(/\/$/, ''),
    close: () => app.close(),
    has: (method, url) => app.hasRoute({ method: method.toUpperCase() as 'GET', url }),
  };
}

/**
 * Every HTML page the app serves (GET routes outside /api/ and /assets/), read from Fastify's route tree, so a page
 * added later is visited without touching the tests. Paths keep their parameters (`/hosts/:ip`).
 */
export function pagePaths(s: Served): string[] {
  const out: string[] = [];
  const stack: string[] = [];
  for (const line of s.app.printRoutes({ commonPrefix: false, method: 'GET' }).split('\n')) {
    const m = /^((?:│ {3}| {4})*)[├└]── (.+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (m === null) continue;
    const depth = (m[1] ?? '').length / 4;
    stack.length = depth;
    stack.push(m[2] ?? '');
    if (m[3] === undefined || !m[3].split(', ').includes('GET')) continue;
    const path = stack.join('');
    if (!path.startsWith('/api/') && !path.startsWith('/assets/')) out.push(path);
  }
  return [...new Set(out)].sort();
}

/** The routes a flow needs that the app does not serve yet ('GET /hosts/:ip'); empty when all are there. */
export function missingRoutes(s: Served, needs: readonly string[]): string[] {
  return needs.filter((n) => {
    const [method = 'GET', url = ''] = n.split(' ');
    return !s.has(method, url);
  });
}

export interface TabEvents {
  readonly pageErrors: string[];
  readonly consoleErrors: string[];
  readonly cspViolations: string[];
  readonly dialogs: string[];
  /** Values written to window.__xss (an injected payload ran). */
  readonly xss: string[];
  /** Requests aborted because they were not to the test server. */
  readonly blocked: string[];
}

export interface Tab {
  readonly context: BrowserContext;
  readonly page: Page;
  readonly events: TabEvents;
  readonly base: string;
  close(): Promise<void>;
}

/**
 * Runs in every document before its own scripts (injected by the CDP, so the page's CSP does not apply to it). A
 * string, not a function: the test code is compiled without the DOM library. `__xss` is a setter so a payload that
 * runs and the page then navigates away is still reported.
 */
const PROBE = `(() => {
  const report = window.__tocsinReport;
  let value;
  Object.defineProperty(window, '__xss', { configurable: false, get: () => value, set: (v) => { value = v; report('xss', String(v)); } });
  document.addEventListener('securitypolicyviolation', (e) => {
    report('csp', e.violatedDirective + ' blocked ' + (e.blockedURI || '(inline)') + ' at ' + e.sourceFile + ':' + e.lineNumber);
  });
})();`;

/** A fresh browser context (no cookies) with one page, confined to `base` and instrumented. */
export async function openTab(browser: Browser, base: string): Promise<Tab> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, serviceWorkers: 'block', acceptDownloads: false });
  const events: TabEvents = { pageErrors: [], consoleErrors: [], cspViolations: [], dialogs: [], xss: [], blocked: [] };
  const origin = new URL(base).origin;
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    let same = false;
    try {
      same = new URL(url).origin === origin;
    } catch {
      same = false;
    }
    if (same) return route.continue();
    events.blocked.push(url);
    return route.abort('blockedbyclient');
  });
  await context.exposeBinding('__tocsinReport', (_source, kind: string, text: string) => {
    if (kind === 'xss') events.xss.push(text);
    else events.cspViolations.push(text);
  });
  await context.addInitScript({ content: PROBE });
  const page = await context.newPage();
  page.on('pageerror', (e) => events.pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') events.consoleErrors.push(m.text());
  });
  page.on('dialog', (d) => {
    events.dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss().catch(() => undefined);
  });
  return { context, page, events, base, close: () => context.close() };
}

/** Logs in through the /login form (app.js posts it as JSON) and waits until the browser has left /login. */
export async function login(tab: Tab, account: Pick<Account, 'email' | 'password'>, next?: string): Promise<void> {
  const { page } = tab;
  await page.goto(`${tab.base}/login${next === undefined ? '' : `?next=${encodeURIComponent(next)}`}`);
  await page.locator('#email').fill(account.email);
  await page.locator('#password').fill(account.password);
  await Promise.all([
    page.waitForURL((u) => u.pathname !== '/login', { timeout: 15_000 }),
    page.locator('form[data-api="/api/session"] button[type="submit"]').click(),
  ]);
}

/**
 * Logs in through the API with the tab's own request context (the session cookie lands in the browser context), then
 * opens `next`: quicker than the form, for flows that test something else (the form itself is tested once).
 */
export async function signIn(tab: Tab, account: Pick<Account, 'email' | 'password'>, next: string): Promise<void> {
  const res = await tab.context.request.post(`${tab.base}/api/session`, { data: { email: account.email, password: account.password } });
  if (res.status() !== 200) throw new Error(`logging in ${account.email} answered ${res.status()}: ${await res.text()}`);
  await tab.page.goto(`${tab.base}${next}`);
}

/** Writes a PNG (the full page, or just the viewport: cheaper) to test-artifacts/screenshots/<name>.png; returns its path. */
export async function screenshot(page: Page, name: string, o: { fullPage?: boolean } = {}): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = join(SCREENSHOT_DIR, `${name.replace(/[^a-z0-9_-]+/gi, '-')}.png`);
  await page.screenshot({ path: file, fullPage: o.fullPage ?? true });
  return file;
}

/** GET a JSON API path with the tab's cookies (the same session the page uses). */
export async function apiGet<T>(tab: Tab, path: string): Promise<{ status: number; json: T }> {
  const res = await tab.context.request.get(`${tab.base}${path}`);
  const text = await res.text();
  return { status: res.status(), json: (text === '' ? null : JSON.parse(text)) as T };
}
