/**
 * One-time account tokens (migration 0020): invitations and password resets. Queries only; the rules (token
 * generation, lifetimes, throttling, password policy) are in src/services/account-mail.ts. Tokens arrive here
 * already hashed (SHA-256 hex).
 */
import { sql, type Kysely } from 'kysely';
import type { DbSchema } from './schema.js';

export type AccountTokenPurpose = 'invite' | 'reset';

export async function insertAccountToken(db: Kysely<DbSchema>, t: { sha256: string; userId: number; purpose: AccountTokenPurpose; expiresAt: Date }): Promise<void> {
  await db.insertInto('account_tokens').values({ token_sha256: t.sha256, user_id: t.userId, purpose: t.purpose, expires_at: t.expiresAt }).execute();
}

/** Tokens of this purpose made for the user since `since` (the per-account throttle of reset mails). */
export async function countRecentTokens(db: Kysely<DbSchema>, userId: number, purpose: AccountTokenPurpose, since: Date): Promise<number> {
  const r = await db.selectFrom('account_tokens').select(db.fn.countAll<string>().as('n'))
    .where('user_id', '=', userId).where('purpose', '=', purpose).where('created_at', '>=', since).executeTakeFirstOrThrow();
  return Number(r.n);
}

/**
 * Redeems a token and sets the account's password in one transaction: the token must be unused, unexpired and
 * belong to an enabled account; it is marked used by the same UPDATE that checks it (two redemptions racing: one
 * wins). Every other open token of the user is closed too, and every session of the user ends (whoever knew the
 * old password is logged out). Returns the user's id and e-mail, or null when the token is not redeemable.
 */
export async function redeemAccountToken(db: Kysely<DbSchema>, sha256: string, passwordHash: string, now: Date): Promise<{ userId: number; email: string; purpose: AccountTokenPurpose } | null> {
  return db.transaction().execute(async (trx) => {
    const t = await trx.updateTable('account_tokens').set({ used_at: now })
      .where('token_sha256', '=', sha256).where('used_at', 'is', null).where('expires_at', '>', now)
      .where(({ exists, selectFrom }) => exists(selectFrom('users').select(sql`1`.as('one')).whereRef('users.id', '=', 'account_tokens.user_id').where('users.disabled', '=', false)))
      .returning(['user_id', 'purpose']).executeTakeFirst();
    if (t === undefined) return null;
    const u = await trx.updateTable('users').set({ password_hash: passwordHash }).where('id', '=', t.user_id).returning('email').executeTakeFirstOrThrow();
    await trx.updateTable('account_tokens').set({ used_at: now }).where('user_id', '=', t.user_id).where('used_at', 'is', null).execute();
    await trx.deleteFrom('sessions').where('user_id', '=', t.user_id).execute();
    return { userId: t.user_id, email: u.email, purpose: t.purpose };
  });
}
