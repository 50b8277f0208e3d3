/**
 * Signed acknowledgement tokens: the link in a warning that lets the organisation say "received, on it".
 * `v1.<ticket>.<expires, unix seconds>.<HMAC-SHA256 of the rest, base64url>`. Nothing secret is in the token;
 * the HMAC makes it unforgeable without the secret (TOCSIN_ACK_SECRET, or one generated under TOCSIN_HOME), and
 * the expiry makes an old link stop working. Verification compares in constant time. Pure (hashing only).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isTicket } from './ticket.js';

export interface AckClaims {
  readonly ticket: string;
  readonly expiresAt: Date;
}

export type TokenCheck =
  | { readonly ok: true; readonly claims: AckClaims }
  | { readonly ok: false; readonly reason: 'malformed' | 'bad-signature' | 'expired' };

/** Secrets shorter than this are refused: the HMAC is only as strong as its key. */
export const MIN_SECRET_BYTES = 16;

function mac(secret: Buffer, payload: string): Buffer {
  return createHmac('sha256', secret).update(payload, 'utf8').digest();
}

function checkSecret(secret: Buffer): void {
  if (secret.length < MIN_SECRET_BYTES) throw new RangeError(`the acknowledgement secret must have at least ${MIN_SECRET_BYTES} bytes`);
}

export function signAckToken(secret: Buffer, ticket: string, expiresAt: Date): string {
  checkSecret(secret);
  if (!isTicket(ticket)) throw new RangeError(`not a ticket number: ${ticket}`);
  const payload = `v1.${ticket}.${Math.floor(expiresAt.getTime() / 1000)}`;
  return `${payload}.${mac(secret, payload).toString('base64url')}`;
}

export function verifyAckToken(secret: Buffer, token: string, now: Date): TokenCheck {
  checkSecret(secret);
  const m = /^(v1\.(\d{8}-\d{8})\.(\d{1,12}))\.([A-Za-z0-9_-]{43})$/.exec(token.trim());
  if (m === null || !isTicket(m[2]!)) return { ok: false, reason: 'malformed' };
  const given = Buffer.from(m[4]!, 'base64url');
  const want = mac(secret, m[1]!);
  if (given.length !== want.length || !timingSafeEqual(given, want)) return { ok: false, reason: 'bad-signature' };
  const expiresAt = new Date(Number(m[3]) * 1000);
  if (expiresAt.getTime() <= now.getTime()) return { ok: false, reason: 'expired' };
  return { ok: true, claims: { ticket: m[2]!, expiresAt } };
}
