/**
 * Invitation and password reset by e-mail (issue 10 §2), through the same mail adapter as the campaigns
 * (a CampaignMailer: src/platform/mail/smtp-sender.ts, or the local sink in the demo and tests).
 *
 * - `inviteUser`: creates the account with no usable password (an argon2id hash of random bytes nobody keeps) and
 *   mails a one-time link valid 72 h.
 * - `requestPasswordReset`: the same answer whether or not the address has an account, in about the same time:
 *   the database work is done for every request and the SMTP transaction happens after the answer (the caller does
 *   not await `delivery`). At most RESET_PER_HOUR reset mails per account and hour (counted in the database, so
 *   it holds across processes and restarts); the web route adds a per-address and per-client throttle on top.
 * - `completeToken`: single use (redeemed by one UPDATE that checks and marks it), refused when expired or the
 *   account is disabled; sets the password and ends every session of the account.
 *
 * Tokens: 32 random bytes, only their SHA-256 stored (migration 0020). The link's base URL comes from the
 * configuration (TOCSIN_WEB_URL), never from the request's Host header, which an attacker controls.
 * Mail headers carry hostile text only folded to one line (toHeaderText); the adapter refuses anything else.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { TocsinError } from '../core/errors.js';
import { parseMailFrom } from '../core/smtp-url.js';
import { sanitiseText } from '../core/text.js';
import { userByEmail } from '../platform/db/account-store.js';
import { countRecentTokens, insertAccountToken, redeemAccountToken, type AccountTokenPurpose } from '../platform/db/account-token-store.js';
import type { DbSchema } from '../platform/db/schema.js';
import { createSmtpSender, toHeaderText, type SmtpSender } from '../platform/mail/index.js';
import { addUser, hashPassword, normaliseEmail, sha256, type UserRole } from './accounts.js';
import type { CampaignMailer, MailerOutcome } from './campaigns.js';

type Db = Kysely<DbSchema>;

export const INVITE_TTL_MS = 72 * 3600_000;
export const RESET_TTL_MS = 3600_000;
/** Reset mails per account per hour; further requests answer the same and send nothing. */
export const RESET_PER_HOUR = 3;
export const MIN_PASSWORD = 12;
const MAX_PASSWORD = 1024;

export interface AccountMailOptions {
  readonly now?: Date;
  /** The From address's domain names the Message-ID (default tocsin.invalid). */
  readonly fromAddress?: string;
  /** The CERT's name in the message (default TOCSIN_CERT_NAME, else "Tocsin"). */
  readonly producer?: string;
}

/** A base URL for links: http(s), no query or fragment; trailing slashes dropped. @throws TOCSIN_CONFIG_INVALID */
export function linkBase(baseUrl: string): string {
  let u: URL;
  try {
    u = new URL(baseUrl);
  } catch {
    throw new TocsinError('TOCSIN_CONFIG_INVALID', 'TOCSIN_WEB_URL must be the http(s):// address users open Tocsin at');
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.search !== '' || u.hash !== '' || u.username !== '' || u.password !== '') {
    throw new TocsinError('TOCSIN_CONFIG_INVALID', 'TOCSIN_WEB_URL must be an http(s):// address without query, fragment or credentials');
  }
  return u.toString().replace(/\/+$/, '');
}

export function tokenLink(baseUrl: string, token: string): string {
  return `${linkBase(baseUrl)}/reset/complete?token=${encodeURIComponent(token)}`;
}

function messageId(fromAddress: string | undefined): string {
  const domain = (fromAddress ?? '').slice((fromAddress ?? '').lastIndexOf('@') + 1).replace(/[^A-Za-z0-9.-]/g, '') || 'tocsin.invalid';
  return `<account.${randomBytes(12).toString('hex')}@${domain}>`;
}

function producerOf(o: AccountMailOptions): string {
  const p = toHeaderText(o.producer ?? process.env['TOCSIN_CERT_NAME'] ?? '', 80);
  return p === '' ? 'Tocsin' : p;
}

async function newToken(db: Db, userId: number, purpose: AccountTokenPurpose, now: Date): Promise<{ token: string; expiresAt: Date }> {
  const token = randomBytes(32).toString('base64url');
  const expiresAt = new Date(now.getTime() + (purpose === 'invite' ? INVITE_TTL_MS : RESET_TTL_MS));
  await insertAccountToken(db, { sha256: sha256(token), userId, purpose, expiresAt });
  return { token, expiresAt };
}

export interface InviteResult {
  readonly email: string;
  readonly role: UserRole;
  readonly org: string | null;
  readonly expiresAt: Date;
  /** What the relay said; anything but `accepted` means the person has no link yet (send a reset to retry). */
  readonly mail: MailerOutcome;
}

/**
 * Creates the account (TOCSIN_USER_EXISTS, TOCSIN_ORG_NOT_FOUND, TOCSIN_ARG_INVALID as `tocsin user add`) and mails
 * the invitation. The account exists even when the mail failed (see `mail`): a password reset sends a new link.
 */
export async function inviteUser(db: Db, mailer: CampaignMailer, who: { email: string; role: string; org?: string }, baseUrl: string, o: AccountMailOptions = {}): Promise<InviteResult> {
  const base = linkBase(baseUrl);
  const now = o.now ?? new Date();
  const added = await addUser(db, { email: who.email, role: who.role, ...(who.org === undefined ? {} : { org: who.org }) });
  const user = await userByEmail(db, added.email);
  if (user === null) throw new TocsinError('TOCSIN_INTERNAL', 'the invited account was not found after it was created');
  const { token, expiresAt } = await newToken(db, user.id, 'invite', now);
  const producer = producerOf(o);
  const orgLine = added.org === null ? '' : ` for ${sanitiseText(added.org, { max: 200 })}`;
  const mail = await mailer.send({
    to: [{ address: added.email }],
    subject: toHeaderText(`Your ${producer} account${added.org === null ? '' : ` for ${added.org}`}`, 200),
    text: `Hello,\n\nan account was made for you on ${producer} (role: ${added.role}${orgLine}).\n\n` +
      `Choose your password here within 72 hours (the link works once):\n${tokenLink(base, token)}\n\n` +
      'If you did not expect this message, ignore it: nothing happens without the link.\n',
    messageId: messageId(o.fromAddress),
  });
  return { email: added.email, role: added.role, org: added.org, expiresAt, mail };
}

export interface ResetRequest {
  /** The SMTP transaction, if one was started (resolved when it ended, never rejected). Not awaited by the web. */
  readonly delivery: Promise<MailerOutcome | null>;
}

/**
 * Mails a reset link when the address has an enabled account and fewer than RESET_PER_HOUR links went to it in
 * the last hour; otherwise does nothing. The caller answers the same in every case.
 */
export async function requestPasswordReset(db: Db, mailer: CampaignMailer, emailIn: string, baseUrl: string, o: AccountMailOptions = {}): Promise<ResetRequest> {
  const base = linkBase(baseUrl);
  const now = o.now ?? new Date();
  let email: string;
  try {
    email = normaliseEmail(emailIn);
  } catch {
    return { delivery: Promise.resolve(null) };
  }
  const user = await userByEmail(db, email);
  if (user === null || user.disabled) return { delivery: Promise.resolve(null) };
  if ((await countRecentTokens(db, user.id, 'reset', new Date(now.getTime() - 3600_000))) >= RESET_PER_HOUR) return { delivery: Promise.resolve(null) };
  const { token } = await newToken(db, user.id, 'reset', now);
  const producer = producerOf(o);
  const delivery = mailer.send({
    to: [{ address: user.email }],
    subject: toHeaderText(`Reset your ${producer} password`, 200),
    text: `Hello,\n\nsomeone (we hope you) asked to reset the password of your ${producer} account.\n\n` +
      `Choose a new password here within an hour (the link works once; every session of the account ends):\n${tokenLink(base, token)}\n\n` +
      'If you did not ask, ignore this message: your password stays as it is.\n',
    messageId: messageId(o.fromAddress),
  }).catch((e: unknown): MailerOutcome => ({ kind: 'uncertain', detail: e instanceof Error ? e.message : String(e) }));
  return { delivery };
}

/**
 * Redeems an invitation or reset token with a new password (at least MIN_PASSWORD characters). The password is
 * hashed before the token is looked at, so a wrong token costs the same time as a right one.
 * @throws TocsinError TOCSIN_ARG_INVALID (password), TOCSIN_ACCOUNT_TOKEN_INVALID
 */
export async function completeToken(db: Db, token: string, newPassword: string, o: { now?: Date } = {}): Promise<{ email: string; purpose: AccountTokenPurpose }> {
  if (newPassword.length < MIN_PASSWORD || newPassword.length > MAX_PASSWORD) {
    throw new TocsinError('TOCSIN_ARG_INVALID', `a password needs ${MIN_PASSWORD} to ${MAX_PASSWORD} characters`);
  }
  const hash = await hashPassword(newPassword);
  const r = /^[A-Za-z0-9_-]{20,200}$/.test(token) ? await redeemAccountToken(db, sha256(token), hash, o.now ?? new Date()) : null;
  if (r === null) throw new TocsinError('TOCSIN_ACCOUNT_TOKEN_INVALID', 'this link is unknown, was used already or has expired');
  return { email: r.email, purpose: r.purpose };
}

// ---------------------------------------------------------------------------------------------------------------
// Mail settings

export interface AccountMailSettings {
  readonly mailer: CampaignMailer;
  readonly baseUrl: string;
  readonly fromAddress: string;
  close(): Promise<void>;
}

/**
 * The mailer and link base from the environment: TOCSIN_SMTP_URL and TOCSIN_MAIL_FROM (as for campaigns) and
 * TOCSIN_WEB_URL (the address users open Tocsin at). One SMTP pool per call: invitations and resets are rare, so
 * the caller opens it for one message and closes it after.
 * @throws TocsinError TOCSIN_MAIL_UNCONFIGURED when a variable is missing, TOCSIN_CONFIG_INVALID when one is invalid
 */
export function accountMailFromEnv(env: NodeJS.ProcessEnv = process.env): AccountMailSettings {
  const url = env['TOCSIN_SMTP_URL'];
  const from = env['TOCSIN_MAIL_FROM'];
  const web = env['TOCSIN_WEB_URL'];
  const missing = [url ? null : 'TOCSIN_SMTP_URL', from ? null : 'TOCSIN_MAIL_FROM', web ? null : 'TOCSIN_WEB_URL'].filter((x): x is string => x !== null);
  if (missing.length > 0 || !url || !from || !web) {
    // Not a broken configuration (mail is optional): a feature this server was not set up for. The web answers 503.
    throw new TocsinError('TOCSIN_MAIL_UNCONFIGURED', `e-mail from Tocsin (invitations, password resets) is not set up on this server: ${missing.join(', ')} not set`);
  }
  const baseUrl = linkBase(web);
  const fromAddress = parseMailFrom(from).from?.address ?? '';
  const sender: SmtpSender = createSmtpSender({ url, from, maxConnections: 1 });
  return { mailer: sender, baseUrl, fromAddress, close: () => sender.close() };
}
