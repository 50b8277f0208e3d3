/**
 * The message the SMTP adapter sends, and how it becomes RFC 5322 bytes (nodemailer's MailComposer, optional DKIM).
 *
 * Header safety is checked here, at the last point before the wire: every header value built from data (subject,
 * display names, addresses, attachment names, extra headers, Message-ID) must be one line without control
 * characters, or the message is refused with TOCSIN_MAIL_MESSAGE_INVALID and nothing is sent. Callers fold hostile
 * text with toHeaderText() first; a CR/LF that reached this point is a bug upstream, not something to repair quietly.
 */
import { createPrivateKey } from 'node:crypto';
import type { Readable } from 'node:stream';
import MailComposer from 'nodemailer/lib/mail-composer';
import DKIM from 'nodemailer/lib/dkim';
import { TocsinError } from '../../core/errors.js';
import { CONTROL_CHARS, isMailAddress } from '../../core/smtp-url.js';

export interface MailAddress {
  readonly address: string;
  /** Display name; any text, encoded by the composer (RFC 2047) when it is not plain ASCII. */
  readonly name?: string;
}

export interface MailAttachment {
  readonly filename: string;
  readonly contentType: string;
  readonly content: string | Buffer;
}

export interface DkimKey {
  readonly domainName: string;
  readonly keySelector: string;
  /** PEM private key. */
  readonly privateKey: string;
}

/** A fully built message: the adapter adds nothing but Date (when absent) and the MIME structure. */
export interface OutgoingMessage {
  /** Defaults to the sender's configured From. */
  readonly from?: MailAddress;
  readonly to: readonly MailAddress[];
  readonly replyTo?: MailAddress;
  readonly subject: string;
  readonly text: string;
  readonly html?: string;
  readonly attachments?: readonly MailAttachment[];
  /**
   * `<unique@domain>`: chosen by the caller (the outbox stores it before sending, so a delivery, a bounce or a
   * reply can be matched to the message even when the SMTP reply never came).
   */
  readonly messageId: string;
  /** Extra headers, e.g. List-Id, X-Tocsin-Ticket, In-Reply-To. `Auto-Submitted: auto-generated` is the default. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Envelope sender (bounces go here; e.g. a VERP address); defaults to the From address. */
  readonly envelopeFrom?: string;
  readonly date?: Date;
  readonly dkim?: DkimKey;
}

/** What the composer produced: the bytes and the envelope they go out with. */
export interface BuiltMessage {
  readonly raw: Buffer;
  readonly envelopeFrom: string;
  readonly recipients: readonly string[];
  readonly messageId: string;
}

/** Header names the adapter owns or that would change who receives the message: not settable through `headers`. */
const RESERVED = new Set(['from', 'to', 'cc', 'bcc', 'subject', 'message-id', 'date', 'reply-to', 'sender', 'return-path',
  'mime-version', 'content-type', 'content-transfer-encoding', 'dkim-signature']);

/** Folds text from hostile sources into one header-safe line: every control character (CR, LF, TAB, ...) becomes a space. */
export function toHeaderText(s: string, max = 900): string {
  const one = s.replace(new RegExp(CONTROL_CHARS.source, 'g'), ' ').replace(/ {2,}/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

function invalid(what: string): TocsinError {
  return new TocsinError('TOCSIN_MAIL_MESSAGE_INVALID', `message refused before sending: ${what}`);
}

function checkLine(what: string, value: string): void {
  if (CONTROL_CHARS.test(value)) throw invalid(`${what} contains a line break or control character`);
}

function checkAddress(what: string, a: MailAddress): void {
  if (!isMailAddress(a.address)) throw invalid(`${what} ${JSON.stringify(a.address)} is not a mail address`);
  if (a.name !== undefined) checkLine(`${what} display name`, a.name);
}

/** Every check the message must pass before a byte is sent; throws TOCSIN_MAIL_MESSAGE_INVALID. */
export function checkMessage(m: OutgoingMessage, from: MailAddress): void {
  checkAddress('From', from);
  if (m.to.length === 0) throw invalid('no recipients');
  for (const r of m.to) checkAddress('recipient', r);
  if (m.replyTo) checkAddress('Reply-To', m.replyTo);
  if (m.envelopeFrom !== undefined && !isMailAddress(m.envelopeFrom)) throw invalid('envelope sender is not a mail address');
  checkLine('Subject', m.subject);
  if (!/^<[^<>\s@]+@[^<>\s@]+>$/.test(m.messageId)) throw invalid(`Message-ID ${JSON.stringify(m.messageId)} is not <id@domain>`);
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    if (!/^[A-Za-z0-9-]{1,76}$/.test(k)) throw invalid(`header name ${JSON.stringify(k)} is not a token`);
    if (RESERVED.has(k.toLowerCase())) throw invalid(`header ${k} is set by the adapter, not through headers`);
    checkLine(`header ${k}`, v);
  }
  if (m.dkim) {
    if (!/^[A-Za-z0-9.-]{1,253}$/.test(m.dkim.domainName) || !/^[A-Za-z0-9._-]{1,63}$/.test(m.dkim.keySelector)) {
      throw invalid('the DKIM domain or selector is malformed');
    }
    try {
      createPrivateKey(m.dkim.privateKey);
    } catch {
      throw invalid('the DKIM private key is not a PEM private key');
    }
  }
  for (const a of m.attachments ?? []) {
    checkLine('attachment filename', a.filename);
    if (!/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+(;\s*[a-z0-9-]+=("[^"\r\n]*"|[a-z0-9!#$&^_.+-]+))*$/i.test(a.contentType)) {
      throw invalid(`attachment content type ${JSON.stringify(a.contentType)} is malformed`);
    }
  }
}

/** Composes (and DKIM-signs) the message after checking it; refuses anything larger than maxBytes. */
export async function buildMessage(m: OutgoingMessage, defaultFrom: MailAddress, maxBytes: number): Promise<BuiltMessage> {
  const from = m.from ?? defaultFrom;
  checkMessage(m, from);
  const headers: Record<string, string> = { 'Auto-Submitted': 'auto-generated', ...(m.headers ?? {}) };
  const composer = new MailComposer({
    from: { address: from.address, name: from.name ?? '' },
    to: m.to.map((r) => ({ address: r.address, name: r.name ?? '' })),
    ...(m.replyTo ? { replyTo: { address: m.replyTo.address, name: m.replyTo.name ?? '' } } : {}),
    subject: m.subject,
    text: m.text,
    ...(m.html !== undefined ? { html: m.html } : {}),
    attachments: (m.attachments ?? []).map((a) => ({ filename: a.filename, contentType: a.contentType, content: a.content })),
    messageId: m.messageId,
    date: m.date ?? new Date(),
    headers,
    // Content comes from us only: the composer must never read a file or fetch a URL named in a message.
    disableFileAccess: true,
    disableUrlAccess: true,
    xMailer: false,
  });
  let raw: Buffer;
  try {
    raw = await composer.compile().build();
    if (m.dkim) {
      raw = await collect(new DKIM({ ...m.dkim }).sign(raw), maxBytes + 4096);
      // nodemailer's signer sends the message unsigned when it cannot sign: asked to sign, we sign or refuse.
      if (!raw.subarray(0, 20).toString('latin1').startsWith('DKIM-Signature:')) throw invalid('it could not be DKIM-signed');
    }
  } catch (e) {
    // A composer or signer failure (e.g. a DKIM key that is not a private key) is about this message, not SMTP.
    if (e instanceof TocsinError) throw e;
    throw invalid(`it could not be composed: ${(e as Error).message}`);
  }
  if (raw.length > maxBytes) throw invalid(`the message is ${raw.length} bytes, over the cap of ${maxBytes}`);
  return { raw, envelopeFrom: m.envelopeFrom ?? from.address, recipients: m.to.map((r) => r.address), messageId: m.messageId };
}

async function collect(stream: Readable, cap: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of stream) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    n += b.length;
    if (n > cap) throw invalid(`the signed message is over the cap of ${cap} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
