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
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { TocsinError, isTocsinError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import {
  LoginThrottle, SESSION_TTL_MS, ThrottledError, audit, createToken, exposurePage, login, logout, principalOfSession, principalOfToken,
  sameSecret, scopeOf, type AccountsDb, type Principal,
} from '../services/accounts.js';
import { ERROR_BODY, docsPage, openApiDocument, type JsonSchema, type RouteDoc } from './openapi.js';

export const SESSION_COOKIE = 'tocsin_session';

export interface WebDeps {
  readonly db: AccountsDb;
  /** Set the Secure flag on the session cookie even on plain HTTP (behind a TLS-terminating proxy). */
  readonly secureCookies?: boolean;
  readonly throttle?: LoginThrottle;
  readonly version?: string;
  /** Fastify's logger (default off: `tocsin serve` prints its own line). */
  readonly logger?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    /** Set by a scoped handler: the organisation the answer was limited to (for the audit row). */
    orgScope: number | null;
  }
  interface FastifyContextConfig {
    audit?: boolean;
  }
}

type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
interface Route extends RouteDoc {
  readonly audit?: boolean;
  readonly handler: Handler;
}

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (!out.has(name)) out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

function sessionCookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
}

function errorBody(e: TocsinError): { error: { code: string; message: string; hint: string } } {
  return { error: { code: e.code, message: e.message, hint: e.hint } };
}

const USER: JsonSchema = {
  type: 'object',
  required: ['email', 'role', 'org'],
  properties: { email: { type: 'string' }, role: { type: 'string', enum: ['admin', 'analyst', 'org'] }, org: { type: ['string', 'null'] }, orgId: { type: ['integer', 'null'] } },
};

const EXPOSURE: JsonSchema = {
  type: 'object',
  additionalProperties: true,
  required: ['ip', 'port', 'sources', 'org', 'orgId'],
  properties: {
    ip: { type: 'string' }, port: { type: ['integer', 'null'] }, sources: { type: 'array', items: { type: 'string' } },
    hostname: { type: ['string', 'null'] }, product: { type: ['string', 'null'] }, build: { type: ['string', 'null'] },
    vulnerable: { type: 'array', items: { type: 'string' } }, reportedCves: { type: 'array', items: { type: 'string' } },
    compromised: { type: 'boolean' }, org: { type: ['string', 'null'] }, orgId: { type: ['integer', 'null'] }, sector: { type: ['string', 'null'] },
  },
};

function userOf(p: Principal): Record<string, unknown> {
  return { email: p.email, role: p.role, org: p.org, orgId: p.orgId };
}

function need(req: FastifyRequest): Principal {
  if (req.principal === null) throw new TocsinError('TOCSIN_AUTH_REQUIRED', 'log in first');
  return req.principal;
}

export async function buildApp(deps: WebDeps): Promise<FastifyInstance> {
  const app = Fastify({ logger: deps.logger ?? false, bodyLimit: 64 * 1024, trustProxy: false });
  const throttle = deps.throttle ?? new LoginThrottle();
  const db = deps.db;

  app.decorateRequest('principal', null);
  app.decorateRequest('orgScope', null);

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

  const secureFor = (req: FastifyRequest): boolean => deps.secureCookies === true || req.protocol === 'https';

  const routes: Route[] = [
    {
      method: 'POST', url: '/api/session', summary: 'Log in: sets the session cookie and returns the CSRF token', auth: false,
      body: { type: 'object', required: ['email', 'password'], additionalProperties: false, properties: { email: { type: 'string', maxLength: 320 }, password: { type: 'string', maxLength: 1024 } } },
      response: { 200: { type: 'object', required: ['user', 'csrfToken', 'expiresAt'], properties: { user: USER, csrfToken: { type: 'string' }, expiresAt: { type: 'string' } } } },
      handler: async (req, reply) => {
        const { email, password } = req.body as { email: string; password: string };
        const r = await login(db, throttle, email, password, req.ip);
        void reply.header('set-cookie', sessionCookie(r.sessionId, Math.floor(SESSION_TTL_MS / 1000), secureFor(req)));
        return { user: userOf(r.principal), csrfToken: r.csrfToken, expiresAt: r.expiresAt.toISOString() };
      },
    },
    {
      method: 'DELETE', url: '/api/session', summary: 'Log out (needs X-CSRF-Token)', auth: true,
      response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } },
      handler: async (req, reply) => {
        need(req);
        const sid = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
        if (sid !== undefined) await logout(db, sid);
        void reply.header('set-cookie', sessionCookie('', 0, secureFor(req)));
        return { ok: true };
      },
    },
    {
      method: 'GET', url: '/api/me', summary: 'The calling account', auth: true,
      response: { 200: USER },
      handler: async (req) => userOf(need(req)),
    },
    {
      method: 'POST', url: '/api/tokens', summary: 'Create an API token for the calling account (shown once)', auth: true,
      body: { type: 'object', additionalProperties: false, properties: { name: { type: 'string', minLength: 1, maxLength: 100 }, expires: { type: 'string', maxLength: 10 } } },
      response: { 200: { type: 'object', required: ['id', 'token'], properties: { id: { type: 'integer' }, token: { type: 'string' }, expiresAt: { type: ['string', 'null'] } } } },
      handler: async (req) => {
        const p = need(req);
        const b = (req.body ?? {}) as { name?: string; expires?: string };
        const t = await createToken(db, p.email, { ...(b.name === undefined ? {} : { name: b.name }), ...(b.expires === undefined ? {} : { expires: b.expires }) });
        return { id: t.id, token: t.token, expiresAt: t.expiresAt?.toISOString() ?? null };
      },
    },
    {
      method: 'GET', url: '/api/exposures', summary: 'Exposures (one record per ip:port), paged by a keyset cursor; organisation accounts see only their own', auth: true, audit: true,
      querystring: {
        type: 'object', additionalProperties: false,
        properties: {
          cursor: { type: 'string', maxLength: 200 }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          cve: { type: 'string', maxLength: 30 }, org: { type: 'string', minLength: 1, maxLength: 200 },
        },
      },
      response: { 200: { type: 'object', required: ['items', 'nextCursor'], properties: { items: { type: 'array', items: EXPOSURE }, nextCursor: { type: ['string', 'null'] } } } },
      handler: async (req) => {
        const scope = scopeOf(need(req));
        if (scope.kind === 'org') req.orgScope = scope.orgId;
        const q = req.query as { cursor?: string; limit: number; cve?: string; org?: string };
        const page = await exposurePage(db, scope, q);
        req.orgScope = page.orgScope;
        return { items: page.items, nextCursor: page.nextCursor };
      },
    },
  ];

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
      schema: {
        ...(r.querystring === undefined ? {} : { querystring: r.querystring }),
        ...(r.body === undefined ? {} : { body: r.body }),
        // Only JSON objects go through the serialiser (the docs page is HTML; the OpenAPI document is sent as is).
        ...(r.url.startsWith('/api/openapi') || r.url === '/api/docs' ? {} : { response: { ...r.response, '4xx': ERROR_BODY } }),
      },
      handler: r.handler,
    });
  }
  return app;
}
