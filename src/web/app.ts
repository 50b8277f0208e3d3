/**
 * `buildApp(deps)`: the Fastify application behind `tocsin serve` (issue 10 §1-2). One route table (src/web/openapi.ts
 * RouteDoc + handler) is both registered with its JSON schemas and turned into the OpenAPI document.
 *
 * Access: a session cookie (POST /api/session) or `Authorization: Bearer TOKEN`. A state change (any method but
 * GET/HEAD) authenticated by the cookie needs the session's CSRF token in X-CSRF-Token (double submit tied to the
 * session; a bearer token is no ambient credential and needs none). Organisation users are scoped by the services
 * (src/services/accounts.ts scopeOf/exposurePage), never here. Routes marked `audit` append one web_audit row per
 * answer, denials included, before the answer is sent.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { TocsinError, isTocsinError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { LoginThrottle, ThrottledError, audit, principalOfSession, principalOfToken, sameSecret, type AccountsDb, type Principal } from '../services/accounts.js';
import { ERROR_BODY, docsPage, openApiDocument } from './openapi.js';
import { readFileSync } from 'node:fs';
import { escapeText, html } from './html.js';
import { layout, type PageModule } from './page.js';
import { campaignPages } from './pages/campaigns.js';
import { dashboardPages } from './pages/dashboard.js';
import { hostPages } from './pages/hosts.js';
import { loginPage } from './pages/login.js';
import { resetCompletePage, resetPage } from './pages/reset.js';
import { registryPages } from './pages/registry.js';
import { reviewPages } from './pages/review.js';
import { portalPages } from './pages/portal.js';
import { incidentPages } from './pages/incidents.js';
import { SESSION_COOKIE, parseCookies, type Route, type RouteContext, type RouteModule } from './route.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { exposureRoutes } from './routes/exposures.js';
import { accountMailRoutes } from './routes/account-mail.js';
import { exportRoutes } from './routes/exports.js';
import { registryRoutes } from './routes/registry.js';
import { sessionRoutes } from './routes/session.js';
import { portalRoutes } from './routes/portal.js';
import { incidentRoutes } from './routes/incidents.js';

export { SESSION_COOKIE };
export { escapeText };

export interface WebDeps {
  readonly db: AccountsDb;
  /** Set the Secure flag on the session cookie even on plain HTTP (behind a TLS-terminating proxy). */
  readonly secureCookies?: boolean;
  readonly throttle?: LoginThrottle;
  readonly version?: string;
  /** Fastify's logger (default off: `tocsin serve` prints its own line). */
  readonly logger?: boolean;
}

/** Every API area, in the order the OpenAPI document lists them. Add a module here to add its routes. */
const MODULES: readonly RouteModule[] = [sessionRoutes, exposureRoutes, dashboardRoutes, registryRoutes, exportRoutes, portalRoutes, incidentRoutes, accountMailRoutes];
/** Every area's HTML pages (src/web/pages). Add a module here to add its pages. */
const PAGE_MODULES: readonly PageModule[] = [dashboardPages, hostPages, campaignPages, registryPages, reviewPages, portalPages, incidentPages];

/** The browser's two static files, read once (copied next to the compiled module by scripts/post-build.mjs). */
const ASSETS: ReadonlyArray<{ url: string; file: string; type: string }> = [
  { url: '/assets/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8' },
  { url: '/assets/app.css', file: 'app.css', type: 'text/css; charset=utf-8' },
];

function errorPage(status: number, code: string, message: string, principal: Principal | null, csrfToken: string | null): string {
  return layout({ title: `Error ${status}`, principal, csrfToken, current: '', body: html`<h1>${status === 403 ? 'Not allowed' : status === 404 ? 'Not found' : 'Something went wrong'}</h1><p class="error">${message} (${code})</p>` });
}

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

function errorBody(e: TocsinError): { error: { code: string; message: string; hint: string } } {
  return { error: { code: e.code, message: e.message, hint: e.hint } };
}

export async function buildApp(deps: WebDeps): Promise<FastifyInstance> {
  const app = Fastify({ logger: deps.logger ?? false, bodyLimit: 64 * 1024, trustProxy: false });
  const throttle = deps.throttle ?? new LoginThrottle();
  const db = deps.db;

  app.decorateRequest('principal', null);
  app.decorateRequest('orgScope', null);
  app.decorateRequest('csrfToken', null);

  app.addHook('onRequest', async (req, reply) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) void reply.header(k, v);
    // Who is calling: a bearer token wins over a cookie (scripts send no cookies; a browser sends no bearer).
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer ([A-Za-z0-9_-]{1,200})$/.exec(auth);
      req.principal = m?.[1] === undefined ? null : await principalOfToken(db, m[1]);
      if (req.principal === null) throw new TocsinError('TOCSIN_AUTH_REQUIRED', 'the bearer token is unknown, expired or revoked');
      return;
    }
    const sid = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    if (sid === undefined || sid === '') return;
    const s = await principalOfSession(db, sid);
    if (s === null) return;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const sent = req.headers['x-csrf-token'];
      if (typeof sent !== 'string' || !sameSecret(sent, s.csrfSecret)) throw new TocsinError('TOCSIN_CSRF', 'missing or wrong X-CSRF-Token for this session');
    }
    req.principal = s.principal;
    req.csrfToken = s.csrfSecret;
  });

  app.addHook('onSend', async (req, reply, payload) => {
    if (req.routeOptions.config.audit === true) {
      await audit(db, {
        userId: req.principal?.userId ?? null, email: req.principal?.email ?? null, method: req.method,
        route: req.routeOptions.url ?? req.url, orgScope: req.orgScope ?? (req.principal?.role === 'org' ? req.principal.orgId : null), status: reply.statusCode,
      });
    }
    return payload;
  });

  app.setErrorHandler(async (err: unknown, _req, reply) => {
    if (err instanceof ThrottledError) void reply.header('retry-after', String(err.retryAfterSeconds));
    if (isTocsinError(err)) return reply.code(err.httpStatus).type('application/json').send(errorBody(err));
    if (typeof err === 'object' && err !== null && 'validation' in err) {
      const message = err instanceof Error ? err.message : 'invalid request';
      return reply.code(400).type('application/json').send(errorBody(new TocsinError('TOCSIN_ARG_INVALID', message)));
    }
    const status = typeof err === 'object' && err !== null && 'statusCode' in err && typeof err.statusCode === 'number' && err.statusCode < 500 ? err.statusCode : 500;
    if (status < 500) return reply.code(status).type('application/json').send(errorBody(new TocsinError('TOCSIN_ARG_INVALID', err instanceof Error ? err.message : 'bad request')));
    reply.log.error(err);
    return reply.code(500).type('application/json').send(errorBody(new TocsinError('TOCSIN_INTERNAL', 'internal error')));
  });
  app.setNotFoundHandler(async (_req, reply) => reply.code(404).type('application/json').send(errorBody(new TocsinError('TOCSIN_NOT_FOUND', 'no such route'))));

  const ctx: RouteContext = { db, throttle, secureCookies: deps.secureCookies === true, version: deps.version ?? VERSION };
  const routes: Route[] = MODULES.flatMap((m) => m(ctx));

  const meta: Route[] = [
    {
      method: 'GET', url: '/api/openapi.json', summary: 'This API as an OpenAPI 3.1 document', auth: false, response: { 200: { type: 'object' } },
      handler: async () => document,
    },
    {
      method: 'GET', url: '/api/docs', summary: 'A browsable list of the operations', auth: false, response: { 200: { type: 'string' } },
      handler: async (_req, reply) => reply.type('text/html; charset=utf-8').send(page),
    },
  ];
  const all = [...routes, ...meta];
  const document = openApiDocument(all, deps.version ?? VERSION);
  const page = docsPage(all);

  for (const r of all) {
    app.route({
      method: r.method,
      url: r.url,
      config: { audit: r.audit === true },
      ...(r.bodyLimit === undefined ? {} : { bodyLimit: r.bodyLimit }),
      schema: {
        ...(r.querystring === undefined ? {} : { querystring: r.querystring }),
        ...(r.body === undefined ? {} : { body: r.body }),
        // Only JSON objects go through the serialiser (the docs page is HTML; the OpenAPI document is sent as is).
        ...(r.raw === true || r.url.startsWith('/api/openapi') || r.url === '/api/docs' ? {} : { response: { ...r.response, '4xx': ERROR_BODY } }),
      },
      handler: r.handler,
    });
  }
  for (const a of ASSETS) {
    const body = readFileSync(new URL(`./assets/${a.file}`, import.meta.url));
    app.get(a.url, async (_req, reply) => reply.header('cache-control', 'public, max-age=300').type(a.type).send(body));
  }
  app.get('/login', async (_req, reply) => reply.type('text/html; charset=utf-8').send(loginPage()));
  // Invitation and password reset (no login): src/web/pages/reset.ts, posting to src/web/routes/account-mail.ts.
  app.get('/reset', async (req, reply) => reply.type('text/html; charset=utf-8').send(resetPage(req.csrfToken)));
  app.get('/reset/complete', async (req, reply) => {
    const token = (req.query as { token?: unknown }).token;
    return reply.type('text/html; charset=utf-8').send(resetCompletePage(typeof token === 'string' ? token : '', req.csrfToken));
  });

  const pages = PAGE_MODULES.flatMap((m) => m(ctx));
  for (const pg of pages) {
    app.get(pg.url, { config: { audit: pg.audit === true } }, async (req, reply) => {
      const p = req.principal;
      if (p === null) return reply.code(303).header('location', `/login?next=${encodeURIComponent(req.url)}`).send();
      const allowed = pg.audience === 'any' || (pg.audience === 'org' ? p.role === 'org' : p.role !== 'org');
      if (!allowed) {
        // An organisation user who opens a staff page lands on the portal; staff opening a portal page see the dashboard.
        if (req.url === '/' || pg.audience === 'org') return reply.code(303).header('location', p.role === 'org' ? '/portal' : '/').send();
        return reply.code(403).type('text/html; charset=utf-8').send(errorPage(403, 'TOCSIN_FORBIDDEN', 'this page is for CERT staff', p, req.csrfToken));
      }
      try {
        const out = await pg.render({ req, reply, principal: p, csrfToken: req.csrfToken ?? '' });
        if (reply.sent) return reply;
        return reply.type('text/html; charset=utf-8').send(layout({ title: out.title, body: out.body, principal: p, csrfToken: req.csrfToken, current: req.routeOptions.url ?? '' }));
      } catch (e) {
        if (!isTocsinError(e) || e.httpStatus >= 500) throw e;
        return reply.code(e.httpStatus).type('text/html; charset=utf-8').send(errorPage(e.httpStatus, e.code, e.message, p, req.csrfToken));
      }
    });
  }
  return app;
}
