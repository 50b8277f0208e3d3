/**
 * What a route module gives the app (src/web/app.ts): a list of routes, each its OpenAPI description (RouteDoc, with
 * the JSON schemas Fastify validates against) and its handler. One module per area (src/web/routes/*.ts) so areas
 * grow without touching each other; the app registers them all and builds one OpenAPI document from the same list.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { TocsinError } from '../core/errors.js';
import type { AccountsDb, LoginThrottle, Principal } from '../services/accounts.js';
import type { JsonSchema, RouteDoc } from './openapi.js';

export type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

export interface Route extends RouteDoc {
  /** Append one web_audit row per answer (denials included): every read or change of an organisation's data. */
  readonly audit?: boolean;
  /** The answer is not JSON (CSV, HTML, SVG, a file): skip the response serialiser. */
  readonly raw?: boolean;
  /** A larger request body than the app's 64 KiB default (uploads), for this route only. */
  readonly bodyLimit?: number;
  readonly handler: Handler;
}

/** What every route module may use: the database, the login throttle and the app's options. */
export interface RouteContext {
  readonly db: AccountsDb;
  readonly throttle: LoginThrottle;
  readonly secureCookies: boolean;
  readonly version: string;
}

export type RouteModule = (ctx: RouteContext) => Route[];

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    /** Set by a scoped handler: the organisation the answer was limited to (for the audit row). */
    orgScope: number | null;
    /** The session's CSRF token (cookie sessions only), for pages to hand to app.js. */
    csrfToken: string | null;
  }
  interface FastifyContextConfig {
    audit?: boolean;
  }
}

/** The caller, or TOCSIN_AUTH_REQUIRED (401). */
export function need(req: FastifyRequest): Principal {
  if (req.principal === null) throw new TocsinError('TOCSIN_AUTH_REQUIRED', 'log in first');
  return req.principal;
}

/** The caller if it is staff (admin or analyst), else TOCSIN_FORBIDDEN (403). */
export function needStaff(req: FastifyRequest): Principal {
  const p = need(req);
  if (p.role !== 'admin' && p.role !== 'analyst') throw new TocsinError('TOCSIN_FORBIDDEN', 'analysts and administrators only');
  return p;
}

/** The caller if it is an administrator, else TOCSIN_FORBIDDEN (403). */
export function needAdmin(req: FastifyRequest): Principal {
  const p = need(req);
  if (p.role !== 'admin') throw new TocsinError('TOCSIN_FORBIDDEN', 'administrators only');
  return p;
}

export function userOf(p: Principal): Record<string, unknown> {
  return { email: p.email, role: p.role, org: p.org, orgId: p.orgId };
}

export const USER: JsonSchema = {
  type: 'object',
  required: ['email', 'role', 'org'],
  properties: { email: { type: 'string' }, role: { type: 'string', enum: ['admin', 'analyst', 'org'] }, org: { type: ['string', 'null'] }, orgId: { type: ['integer', 'null'] } },
};

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (!out.has(name)) out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

export const SESSION_COOKIE = 'tocsin_session';

export function sessionCookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
}
