/**
 * Web accounts, API tokens, sessions and the web audit log (migration 0016, issue 10 §2). Plain reads and writes:
 * the rules (hashing, expiry, scopes) are in src/services/accounts.ts. Tokens and session ids arrive here already
 * hashed (SHA-256 hex), so nothing in this file ever sees a usable secret.
 */
import { sql, type Kysely } from 'kysely';
import { TocsinError, errno } from '../../core/errors.js';
import type { DbSchema } from './schema.js';

export type UserRole = 'admin' | 'analyst' | 'org';

export interface UserRow {
  readonly id: number;
  readonly email: string;
  readonly role: UserRole;
  readonly orgId: number | null;
  /** The organisation's current name (null for admin/analyst). */
  readonly org: string | null;
  readonly passwordHash: string;
  readonly disabled: boolean;
  readonly createdAt: Date;
}

function userQuery(db: Kysely<DbSchema>) {
  return db.selectFrom('users as u').leftJoin('organisations as o', 'o.id', 'u.org_id')
    .select(['u.id', 'u.email', 'u.role', 'u.org_id as orgId', 'o.name as org', 'u.password_hash as passwordHash', 'u.disabled', 'u.created_at as createdAt']);
}

/** @throws TocsinError TOCSIN_USER_EXISTS when the (lower-case) e-mail is taken. */
export async function insertUser(db: Kysely<DbSchema>, u: { email: string; role: UserRole; orgId: number | null; passwordHash: string }): Promise<number> {
  try {
    const r = await db.insertInto('users').values({ email: u.email, role: u.role, org_id: u.orgId, password_hash: u.passwordHash })
      .returning('id').executeTakeFirstOrThrow();
    return r.id;
  } catch (e) {
    // 23505: unique_violation (two adds racing for one address end the same way as one after the other).
    if (errno(e) === '23505') throw new TocsinError('TOCSIN_USER_EXISTS', `an account with this e-mail exists already`, { cause: e });
    throw e;
  }
}

export async function userByEmail(db: Kysely<DbSchema>, email: string): Promise<UserRow | null> {
  return (await userQuery(db).where('u.email', '=', email).executeTakeFirst()) ?? null;
}

export async function listUsers(db: Kysely<DbSchema>): Promise<UserRow[]> {
  return userQuery(db).orderBy('u.email').execute();
}

/** True when an account was changed. */
export async function setUserDisabled(db: Kysely<DbSchema>, email: string, disabled: boolean): Promise<boolean> {
  const r = await db.updateTable('users').set({ disabled }).where('email', '=', email).executeTakeFirst();
  // A disabled account's sessions end now (its tokens are refused by the disabled check on every use).
  if (disabled) await db.deleteFrom('sessions').where('user_id', 'in', db.selectFrom('users').select('id').where('email', '=', email)).execute();
  return r.numUpdatedRows > 0n;
}

export async function insertToken(db: Kysely<DbSchema>, t: { sha256: string; name: string; userId: number; expiresAt: Date | null }): Promise<number> {
  const r = await db.insertInto('api_tokens').values({ token_sha256: t.sha256, name: t.name, user_id: t.userId, expires_at: t.expiresAt })
    .returning('id').executeTakeFirstOrThrow();
  return r.id;
}

/** True when a live token was revoked. */
export async function revokeToken(db: Kysely<DbSchema>, id: number, now: Date): Promise<boolean> {
  const r = await db.updateTable('api_tokens').set({ revoked_at: now }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
  return r.numUpdatedRows > 0n;
}

export interface TokenListRow {
  readonly id: number;
  readonly name: string;
  readonly email: string;
  readonly createdAt: Date;
  readonly lastUsedAt: Date | null;
  readonly expiresAt: Date | null;
  readonly revokedAt: Date | null;
}

export async function listTokens(db: Kysely<DbSchema>): Promise<TokenListRow[]> {
  return db.selectFrom('api_tokens as t').innerJoin('users as u', 'u.id', 't.user_id')
    .select(['t.id', 't.name', 'u.email', 't.created_at as createdAt', 't.last_used_at as lastUsedAt', 't.expires_at as expiresAt', 't.revoked_at as revokedAt'])
    .orderBy('t.id').execute();
}

/** How stale `last_used_at` may get: marking every request would make every API read a write (and an fsync). */
const TOKEN_USE_GRANULARITY_MS = 60_000;

/** The enabled user of a live (not revoked, not expired) token, marking it used (to the minute); null otherwise. */
export async function userOfToken(db: Kysely<DbSchema>, sha256: string, now: Date): Promise<UserRow | null> {
  const t = await db.selectFrom('api_tokens').select(['id', 'user_id', 'last_used_at'])
    .where('token_sha256', '=', sha256).where('revoked_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .executeTakeFirst();
  if (t === undefined) return null;
  if (t.last_used_at === null || now.getTime() - t.last_used_at.getTime() >= TOKEN_USE_GRANULARITY_MS) {
    await db.updateTable('api_tokens').set({ last_used_at: now }).where('id', '=', t.id).execute();
  }
  const u = await userQuery(db).where('u.id', '=', t.user_id).where('u.disabled', '=', false).executeTakeFirst();
  return u ?? null;
}

export async function insertSession(db: Kysely<DbSchema>, s: { sha256: string; userId: number; csrfSecret: string; expiresAt: Date }): Promise<void> {
  await db.insertInto('sessions').values({ id_sha256: s.sha256, user_id: s.userId, csrf_secret: s.csrfSecret, expires_at: s.expiresAt }).execute();
}

/** The enabled user of a live session and the session's CSRF secret; null otherwise. */
export async function userOfSession(db: Kysely<DbSchema>, sha256: string, now: Date): Promise<{ user: UserRow; csrfSecret: string } | null> {
  const s = await db.selectFrom('sessions').select(['user_id', 'csrf_secret']).where('id_sha256', '=', sha256).where('expires_at', '>', now).executeTakeFirst();
  if (s === undefined) return null;
  const u = await userQuery(db).where('u.id', '=', s.user_id).where('u.disabled', '=', false).executeTakeFirst();
  return u === undefined ? null : { user: u, csrfSecret: s.csrf_secret };
}

export async function deleteSession(db: Kysely<DbSchema>, sha256: string, now: Date): Promise<void> {
  await db.deleteFrom('sessions').where((eb) => eb.or([eb('id_sha256', '=', sha256), eb('expires_at', '<=', now)])).execute();
}

export interface AuditEntry {
  readonly userId: number | null;
  readonly email: string | null;
  readonly method: string;
  readonly route: string;
  readonly orgScope: number | null;
  readonly status: number;
}

export async function appendAudit(db: Kysely<DbSchema>, a: AuditEntry): Promise<void> {
  await db.insertInto('web_audit').values({ user_id: a.userId, email: a.email, method: a.method, route: a.route, org_scope: a.orgScope, status: a.status }).execute();
}

export interface AuditRow extends AuditEntry {
  readonly at: Date;
}

export async function auditRows(db: Kysely<DbSchema>, limit: number): Promise<AuditRow[]> {
  return db.selectFrom('web_audit')
    .select(['at', 'user_id as userId', 'email', 'method', 'route', 'org_scope as orgScope', 'status'])
    .orderBy('id', 'desc').limit(limit).execute();
}

/** The organisation's id by name (case-insensitive), or null. */
export async function orgIdByName(db: Kysely<DbSchema>, name: string): Promise<{ id: number; name: string } | null> {
  return (await db.selectFrom('organisations').select(['id', 'name']).where(sql<boolean>`lower(name) = lower(${name})`).executeTakeFirst()) ?? null;
}

/** A new password hash; every session of the account ends (a changed password must lock out whoever had the old one). */
export async function setPasswordHash(db: Kysely<DbSchema>, email: string, passwordHash: string): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    const r = await tx.updateTable('users').set({ password_hash: passwordHash }).where('email', '=', email).returning('id').executeTakeFirst();
    if (r === undefined) return false;
    await tx.deleteFrom('sessions').where('user_id', '=', r.id).execute();
    return true;
  });
}
