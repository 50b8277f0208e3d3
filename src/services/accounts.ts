/**
 * Web accounts and access (issue 10 §2): users with argon2id password hashes, API tokens and sessions stored
 * only as SHA-256, login throttling, the caller's scope, and the exposure listing scoped IN THE QUERY (an
 * organisation user's listing is always filtered to their own organisation by the store; another organisation
 * asked for by name is refused before anything is read).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { hash, verify } from '@node-rs/argon2';
import type { Kysely } from 'kysely';
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import {
  appendAudit, deleteSession, insertSession, insertToken, insertUser, listTokens, listUsers, orgIdByName, revokeToken,
  setPasswordHash, setUserDisabled, userByEmail, userOfSession, userOfToken,
  type AuditEntry, type TokenListRow, type UserRole, type UserRow,
} from '../platform/db/account-store.js';
import type { DbSchema } from '../platform/db/schema.js';
import { exposureFilter, listExposures, type ExposureRecord } from './exposures.js';

export type { UserRole, UserRow, TokenListRow, AuditEntry };
/** The database handle the web layer passes through (so src/web needs no import of src/platform). */
export type AccountsDb = Kysely<DbSchema>;

export const ROLES: readonly UserRole[] = ['admin', 'analyst', 'org'];
const EMAIL = /^[^\s@<>"]{1,64}@[^\s@<>"]{1,255}$/;
/** Session lifetime: a working day. */
export const SESSION_TTL_MS = 12 * 3600_000;

/** Who is calling, as the web layer sees it. */
export interface Principal {
  readonly userId: number;
  readonly email: string;
  readonly role: UserRole;
  /** Set exactly for role 'org': the one organisation this caller may see. */
  readonly orgId: number | null;
  readonly org: string | null;
}

/** What the caller may read: everything, or one organisation (decided from the principal, never from input). */
export type Scope = { readonly kind: 'all' } | { readonly kind: 'org'; readonly orgId: number; readonly org: string };

export function scopeOf(p: Principal): Scope {
  if (p.role !== 'org') return { kind: 'all' };
  if (p.orgId === null || p.org === null) throw new TocsinError('TOCSIN_FORBIDDEN', 'this organisation account has no organisation');
  return { kind: 'org', orgId: p.orgId, org: p.org };
}

function principal(u: UserRow): Principal {
  return { userId: u.id, email: u.email, role: u.role, orgId: u.orgId, org: u.org };
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function shown(text: string): string {
  return JSON.stringify(sanitiseText(text, { max: 80 }));
}

export function normaliseEmail(email: string): string {
  const e = email.trim().toLowerCase();
  if (!EMAIL.test(e)) throw new TocsinError('TOCSIN_ARG_INVALID', `not an e-mail address: ${shown(email)}`);
  return e;
}

export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

export async function hashPassword(password: string): Promise<string> {
  // @node-rs/argon2's default algorithm is argon2id (m=19 MiB, t=2, p=1: the OWASP minimum).
  return hash(password);
}

export interface AddUser {
  readonly email: string;
  readonly role: string;
  readonly org?: string;
  /** Omitted: one is generated and returned (printed once by the CLI). */
  readonly password?: string;
}

export async function addUser(db: AccountsDb, a: AddUser): Promise<{ email: string; role: UserRole; org: string | null; generatedPassword: string | null }> {
  const email = normaliseEmail(a.email);
  const role = ROLES.find((r) => r === a.role);
  if (role === undefined) throw new TocsinError('TOCSIN_ARG_INVALID', `--role must be one of ${ROLES.join(', ')}, got ${shown(a.role)}`);
  if ((role === 'org') !== (a.org !== undefined)) throw new TocsinError('TOCSIN_ARG_INVALID', '--org is required for --role org and only for it');
  if (a.password !== undefined && a.password.length < 12) throw new TocsinError('TOCSIN_ARG_INVALID', 'a password needs at least 12 characters');
  let org: { id: number; name: string } | null = null;
  if (a.org !== undefined) {
    org = await orgIdByName(db, a.org.trim());
    if (org === null) throw new TocsinError('TOCSIN_ORG_NOT_FOUND', `no organisation named ${shown(a.org)} (see tocsin org list)`);
  }
  const password = a.password ?? generatePassword();
  await insertUser(db, { email, role, orgId: org?.id ?? null, passwordHash: await hashPassword(password) });
  return { email, role, org: org?.name ?? null, generatedPassword: a.password === undefined ? password : null };
}

export async function usersList(db: AccountsDb): Promise<UserRow[]> {
  return listUsers(db);
}

/** @throws TocsinError TOCSIN_USER_NOT_FOUND */
export async function disableUser(db: AccountsDb, email: string): Promise<void> {
  if (!(await setUserDisabled(db, normaliseEmail(email), true))) throw new TocsinError('TOCSIN_USER_NOT_FOUND', `no account ${shown(email)}`);
}

/** "90d", "12h" or "never" -> milliseconds (null: no expiry). */
export function parseExpiry(text: string): number | null {
  if (text === 'never') return null;
  const m = /^(\d{1,5})([dh])$/.exec(text.trim());
  if (m === null || Number(m[1]) === 0) throw new TocsinError('TOCSIN_ARG_INVALID', `--expires must be like 90d, 12h or never, got ${shown(text)}`);
  return Number(m[1]) * (m[2] === 'd' ? 86_400_000 : 3_600_000);
}

/** A new token for the account; the token itself is returned once and only its SHA-256 is stored. */
export async function createToken(db: AccountsDb, emailIn: string, o: { name?: string; expires?: string; now?: Date } = {}): Promise<{ id: number; token: string; expiresAt: Date | null }> {
  const email = normaliseEmail(emailIn);
  const user = await userByEmail(db, email);
  if (user === null) throw new TocsinError('TOCSIN_USER_NOT_FOUND', `no account ${shown(emailIn)}`);
  const ttl = parseExpiry(o.expires ?? '90d');
  const now = o.now ?? new Date();
  const expiresAt = ttl === null ? null : new Date(now.getTime() + ttl);
  // A recognisable prefix lets secret scanners find leaked tokens.
  const token = `tocsin_${randomBytes(32).toString('base64url')}`;
  const id = await insertToken(db, { sha256: sha256(token), name: o.name ?? 'token', userId: user.id, expiresAt });
  return { id, token, expiresAt };
}

export async function tokensList(db: AccountsDb): Promise<TokenListRow[]> {
  return listTokens(db);
}

export async function revokeTokenById(db: AccountsDb, id: number): Promise<void> {
  if (!Number.isSafeInteger(id) || id <= 0) throw new TocsinError('TOCSIN_ARG_INVALID', 'a token id is a positive integer (see tocsin token list)');
  if (!(await revokeToken(db, id, new Date()))) throw new TocsinError('TOCSIN_ARG_INVALID', `no live token with id ${id} (see tocsin token list)`);
}

export async function principalOfToken(db: AccountsDb, token: string): Promise<Principal | null> {
  const u = await userOfToken(db, sha256(token), new Date());
  return u === null ? null : principal(u);
}

export async function principalOfSession(db: AccountsDb, sessionId: string): Promise<{ principal: Principal; csrfSecret: string } | null> {
  const s = await userOfSession(db, sha256(sessionId), new Date());
  return s === null ? null : { principal: principal(s.user), csrfSecret: s.csrfSecret };
}

/** Equal strings, compared in constant time (for the CSRF token). */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Too many failures: the login is refused before the password is even looked at. */
export class ThrottledError extends TocsinError {
  readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number) {
    super('TOCSIN_AUTH_THROTTLED', `too many failed logins; try again in ${retryAfterSeconds} s`);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * Failed logins per key (the account, and the client address) in a sliding window, in memory: one process
 * serves the web, and a restart forgetting the count is acceptable (argon2 keeps each guess slow anyway).
 */
export interface ThrottleOptions {
  /** Failures per account in the window (default 5). */
  readonly accountLimit?: number;
  /** Failures per client address in the window (default 50: many people may share one NAT address). */
  readonly ipLimit?: number;
  readonly windowMs?: number;
  readonly now?: () => number;
  readonly maxKeys?: number;
}

export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();
  private readonly accountLimit: number;
  private readonly ipLimit: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly maxKeys: number;
  constructor(o: ThrottleOptions = {}) {
    this.accountLimit = o.accountLimit ?? 5;
    this.ipLimit = o.ipLimit ?? 50;
    this.windowMs = o.windowMs ?? 15 * 60_000;
    this.now = o.now ?? Date.now;
    this.maxKeys = o.maxKeys ?? 100_000;
  }

  private limit(key: string): number {
    return key.startsWith('ip:') ? this.ipLimit : this.accountLimit;
  }

  private recent(key: string): number[] {
    const t = this.now();
    const kept = (this.failures.get(key) ?? []).filter((at) => at > t - this.windowMs);
    if (kept.length === 0) this.failures.delete(key);
    else this.failures.set(key, kept);
    return kept;
  }

  /** @throws ThrottledError when any key has reached the limit. */
  check(keys: readonly string[]): void {
    for (const key of keys) {
      const r = this.recent(key);
      const first = r[0];
      if (r.length >= this.limit(key) && first !== undefined) throw new ThrottledError(Math.max(1, Math.ceil((first + this.windowMs - this.now()) / 1000)));
    }
  }

  fail(keys: readonly string[]): void {
    for (const key of keys) {
      // Bounded memory under a spray of addresses: forget the oldest key.
      if (!this.failures.has(key) && this.failures.size >= this.maxKeys) {
        const oldest = this.failures.keys().next().value;
        if (oldest !== undefined) this.failures.delete(oldest);
      }
      this.failures.set(key, [...this.recent(key), this.now()]);
    }
  }

  succeed(key: string): void {
    this.failures.delete(key);
  }
}

let dummyHash: Promise<string> | undefined;

export interface LoginResult {
  readonly principal: Principal;
  readonly sessionId: string;
  readonly csrfToken: string;
  readonly expiresAt: Date;
}

/**
 * Checks the password and opens a session. An unknown or disabled account costs the same argon2 verification as
 * a known one (against a dummy hash), so the answer time does not tell which addresses have accounts.
 * @throws ThrottledError, TocsinError TOCSIN_AUTH_FAILED
 */
export async function login(db: AccountsDb, throttle: LoginThrottle, emailIn: string, password: string, clientIp: string): Promise<LoginResult> {
  const email = emailIn.trim().toLowerCase();
  const keys = [`account:${email}`, `ip:${clientIp}`];
  throttle.check(keys);
  const user = EMAIL.test(email) ? await userByEmail(db, email) : null;
  dummyHash ??= hashPassword(generatePassword());
  const ok = await verify(user?.passwordHash ?? (await dummyHash), password).catch(() => false);
  if (user === null || user.disabled || !ok) {
    throttle.fail(keys);
    throw new TocsinError('TOCSIN_AUTH_FAILED', 'wrong e-mail or password');
  }
  throttle.succeed(keys[0] ?? email);
  const sessionId = randomBytes(32).toString('base64url');
  const csrfToken = randomBytes(32).toString('base64url');
  const expiresAt = new Date(Date.now() + SESSION_TTL_MS);
  await insertSession(db, { sha256: sha256(sessionId), userId: user.id, csrfSecret: csrfToken, expiresAt });
  return { principal: principal(user), sessionId, csrfToken, expiresAt };
}

export async function logout(db: AccountsDb, sessionId: string): Promise<void> {
  await deleteSession(db, sha256(sessionId), new Date());
}

export async function audit(db: AccountsDb, entry: AuditEntry): Promise<void> {
  await appendAudit(db, entry);
}

export interface ExposurePageQuery {
  readonly cursor?: string;
  readonly limit: number;
  readonly cve?: string;
  readonly org?: string;
}

export interface ExposurePage {
  readonly items: readonly ExposureRecord[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  readonly nextCursor: string | null;
  /** The organisation the read was limited to (null: all). */
  readonly orgScope: number | null;
}

function encodeCursor(r: ExposureRecord): string {
  return Buffer.from(JSON.stringify({ ip: r.ip, port: r.port ?? -1 })).toString('base64url');
}

function decodeCursor(c: string): { ip: string; port: number } {
  try {
    const v: unknown = JSON.parse(Buffer.from(c, 'base64url').toString('utf8'));
    if (typeof v === 'object' && v !== null && 'ip' in v && 'port' in v) {
      const { ip, port } = v;
      if (typeof ip === 'string' && isIP(ip) !== 0 && typeof port === 'number' && Number.isInteger(port) && port >= -1 && port <= 65535) return { ip, port };
    }
  } catch {
    // fall through: the same answer as a well-formed but wrong cursor
  }
  throw new TocsinError('TOCSIN_ARG_INVALID', 'cursor is not one this API returned');
}

/**
 * One page of exposures in (ip, port) order, within the caller's scope. An organisation user always reads with
 * their organisation as the store filter; naming another organisation is TOCSIN_FORBIDDEN (nothing is read).
 */
export async function exposurePage(db: AccountsDb, scope: Scope, q: ExposurePageQuery): Promise<ExposurePage> {
  let org = q.org;
  if (scope.kind === 'org') {
    if (org !== undefined && org.trim().toLowerCase() !== scope.org.toLowerCase()) {
      throw new TocsinError('TOCSIN_FORBIDDEN', 'an organisation account sees only its own organisation');
    }
    org = scope.org;
  }
  const filter = exposureFilter({ ...(org === undefined ? {} : { org }), ...(q.cve === undefined ? {} : { cve: q.cve }) });
  const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
  let orgScope: number | null = null;
  if (scope.kind === 'org') orgScope = scope.orgId;
  else if (filter.org !== undefined) orgScope = (await orgIdByName(db, filter.org))?.id ?? null;
  const { records } = await listExposures(db, filter, { page: q.limit + 1, ...(after === undefined ? {} : { after }) });
  const items: ExposureRecord[] = [];
  let more = false;
  for await (const r of records) {
    if (items.length === q.limit) {
      more = true;
      break;
    }
    items.push(r);
  }
  // Defence in depth: the store filtered by organisation; a record of another one here is a bug, never shown.
  if (scope.kind === 'org' && items.some((r) => r.orgId !== scope.orgId)) throw new TocsinError('TOCSIN_INTERNAL', 'scoped listing returned another organisation\'s record');
  const last = items[items.length - 1];
  return { items, nextCursor: more && last !== undefined ? encodeCursor(last) : null, orgScope };
}

/**
 * The first administrator: when the database has no account at all, `tocsin serve` creates one and prints its
 * generated password once (it is stored only as an argon2id hash), so a fresh quick start can log in. Two servers
 * starting at once race on the unique e-mail: the loser sees the winner's account and creates nothing.
 */
export async function ensureFirstAdmin(db: AccountsDb, email = 'admin@localhost'): Promise<{ email: string; password: string } | null> {
  if ((await usersList(db)).length > 0) return null;
  try {
    const added = await addUser(db, { email, role: 'admin' });
    return added.generatedPassword === null ? null : { email: added.email, password: added.generatedPassword };
  } catch (e) {
    if ((await usersList(db)).length > 0) return null;
    throw e;
  }
}

/** Set an account's password (generated when omitted, returned to print once); ends its sessions. */
export async function setPassword(db: AccountsDb, emailIn: string, password?: string): Promise<{ email: string; generatedPassword: string | null }> {
  const email = normaliseEmail(emailIn);
  if (password !== undefined && password.length < 12) throw new TocsinError('TOCSIN_ARG_INVALID', 'a password needs at least 12 characters');
  const pw = password ?? generatePassword();
  if (!(await setPasswordHash(db, email, await hashPassword(pw)))) throw new TocsinError('TOCSIN_USER_NOT_FOUND', `no account ${shown(email)} (see tocsin user list)`);
  return { email, generatedPassword: password === undefined ? pw : null };
}
