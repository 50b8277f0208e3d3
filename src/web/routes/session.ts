/** Log in and out, who am I, API tokens (issue 10 §2). */
import { SESSION_TTL_MS, createToken, login, logout } from '../../services/accounts.js';
import { USER, need, parseCookies, sessionCookie, SESSION_COOKIE, userOf, type RouteModule } from '../route.js';

export const sessionRoutes: RouteModule = ({ db, throttle, secureCookies }) => [
  {
    method: 'POST', url: '/api/session', summary: 'Log in: sets the session cookie and returns the CSRF token', auth: false,
    body: { type: 'object', required: ['email', 'password'], additionalProperties: false, properties: { email: { type: 'string', maxLength: 320 }, password: { type: 'string', maxLength: 1024 } } },
    response: { 200: { type: 'object', required: ['user', 'csrfToken', 'expiresAt'], properties: { user: USER, csrfToken: { type: 'string' }, expiresAt: { type: 'string' } } } },
    handler: async (req, reply) => {
      const { email, password } = req.body as { email: string; password: string };
      const r = await login(db, throttle, email, password, req.ip);
      void reply.header('set-cookie', sessionCookie(r.sessionId, Math.floor(SESSION_TTL_MS / 1000), secureCookies || req.protocol === 'https'));
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
      void reply.header('set-cookie', sessionCookie('', 0, secureCookies || req.protocol === 'https'));
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
];
