/**
 * The SMTP adapter: sends fully built messages through one relay (TOCSIN_SMTP_URL) over a small pool of
 * connections, and reports each SMTP outcome as a value. `send` never throws for anything the relay or the
 * network does; it throws only TOCSIN_MAIL_MESSAGE_INVALID (a message that must not be sent: a bug upstream).
 *
 * The outcome that matters most is `uncertain`. Once the final `.` of the message has gone out, the relay may have
 * queued it even if we never see its reply (the connection dropped, the reply timed out): sending it again could
 * warn an organisation twice, so the outbox must not retry it on its own. Before that point nothing can have been
 * accepted (an MTA drops a transaction without its final dot), so a drop or timeout there is `transient`.
 *
 * nodemailer reports a connection lost in the middle of a transaction as ECONNECTION/ETIMEDOUT with command
 * `CONN` whatever the phase, so its errors alone cannot tell the two apart. We therefore use its SMTPConnection
 * directly (not its pool) and feed the message from our own stream, which nodemailer reads only after the relay
 * answered DATA with 354: when that stream has ended, the body and the terminating dot are in the socket. If the
 * error comes after that and carries no SMTP reply, the outcome is `uncertain`. The window between the stream's end
 * and the dot reaching the kernel counts as uncertain too: wrongly uncertain is safe, wrongly transient is not.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Readable } from 'node:stream';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { NodemailerError } from 'nodemailer/lib/errors';
import { TocsinError } from '../../core/errors.js';
import { parseMailFrom, parseSmtpUrl, redactSmtpUrl, type SmtpRelay } from '../../core/smtp-url.js';
import { buildMessage, type MailAddress, type OutgoingMessage } from './message.js';

/** Where in the session a transient failure or a rejection happened. */
export type SmtpStage = 'connect' | 'auth' | 'mail' | 'rcpt' | 'data';

export interface RecipientRejection {
  readonly address: string;
  readonly code: number | null;
  readonly response: string;
}

export type SendOutcome =
  /** The relay took the message (250 after the dot). `rejected` lists recipients refused while others were accepted. */
  | { readonly kind: 'accepted'; readonly response: string; readonly messageId: string; readonly accepted: readonly string[]; readonly rejected: readonly RecipientRejection[] }
  /** Nothing was accepted and trying again later may work: a 4xx reply (or 503), a refused or dropped connection, a timeout before the body was complete. */
  | { readonly kind: 'transient'; readonly code: number | null; readonly response: string; readonly stage: SmtpStage }
  /** A 5xx reply to MAIL FROM, RCPT TO (every recipient) or DATA: sending the same message again gets the same answer. */
  | { readonly kind: 'permanent'; readonly code: number; readonly response: string; readonly stage: 'mail' | 'rcpt' | 'data'; readonly rejected: readonly RecipientRejection[] }
  /** The body was sent and the reply never came: the relay may have accepted it. Never resend on one's own. */
  | { readonly kind: 'uncertain'; readonly detail: string };

export interface SmtpSenderOptions {
  /** TOCSIN_SMTP_URL (see src/core/smtp-url.ts). */
  readonly url: string;
  /** TOCSIN_MAIL_FROM: the default From of every message. */
  readonly from: string;
  /** Connections open at once (default: the URL's maxConnections, else 4). */
  readonly maxConnections?: number;
  /** Messages over one connection before it is replaced (default 100). */
  readonly maxMessagesPerConnection?: number;
  /** TCP connect (default 10 s). */
  readonly connectTimeoutMs?: number;
  /** From connect to the 220 greeting (default 30 s). */
  readonly greetingTimeoutMs?: number;
  /** Inactivity on an open connection, including the wait for the reply after the final dot (default 60 s). */
  readonly socketTimeoutMs?: number;
  /** An idle pooled connection is closed after this (default 15 s). */
  readonly idleTimeoutMs?: number;
  /** Largest message in bytes after composing (default 25 MiB). */
  readonly maxMessageBytes?: number;
  /** Extra CA (PEM) to trust, in addition to the URL's tlsCa file. */
  readonly tlsCa?: string | Buffer;
}

export interface SmtpSender {
  /** Sends one message; resolves with the outcome, never rejects for SMTP or network outcomes. */
  send(message: OutgoingMessage): Promise<SendOutcome>;
  /** Connects (TLS, auth) and says QUIT: ok, or why not, without sending anything. */
  verify(): Promise<{ readonly ok: true } | { readonly ok: false; readonly outcome: SendOutcome }>;
  /** Waits for sends in flight, then closes every connection. Later sends resolve as transient. */
  close(): Promise<void>;
  /** The relay URL without its password. */
  readonly relay: string;
}

interface PooledConnection {
  readonly conn: SMTPConnection;
  messages: number;
  dead: boolean;
  idleTimer: NodeJS.Timeout | null;
}

/** A message body that nodemailer pulls chunk by chunk, so we see whether it started and whether it ended. */
class TrackedBody extends Readable {
  started = false;
  ended = false;
  private offset = 0;
  constructor(private readonly raw: Buffer) {
    super({ highWaterMark: 16 * 1024 });
    this.once('end', () => { this.ended = true; });
  }
  override _read(size: number): void {
    this.started = true;
    if (this.offset >= this.raw.length) {
      this.push(null);
      return;
    }
    const end = Math.min(this.raw.length, this.offset + Math.max(size, 16 * 1024));
    this.push(this.raw.subarray(this.offset, end));
    this.offset = end;
  }
}

function stageOf(command: string | undefined): SmtpStage {
  if (command === undefined) return 'connect';
  if (command.startsWith('AUTH')) return 'auth';
  if (command === 'MAIL FROM') return 'mail';
  if (command === 'RCPT TO') return 'rcpt';
  if (command === 'DATA') return 'data';
  return 'connect';
}

function describe(err: NodemailerError): string {
  const parts = [err.code ?? 'ERROR'];
  if (err.originalCode !== undefined) parts.push(err.originalCode);
  if (err.timeoutType !== undefined) parts.push(err.timeoutType);
  return `${parts.join('/')}: ${err.message}`;
}

function rejectionsOf(err: NodemailerError | { rejectedErrors?: NodemailerError[] | undefined }): RecipientRejection[] {
  return (err.rejectedErrors ?? []).map((e) => ({ address: e.recipient ?? '', code: e.responseCode ?? null, response: e.response ?? e.message }));
}

/** How far a send got when it failed: the session was up, the body was being sent, the body (and dot) went out. */
export interface SendProgress {
  readonly inSession: boolean;
  readonly bodyStarted: boolean;
  readonly bodyEnded: boolean;
}

/**
 * Maps a nodemailer error to an outcome, given how far the send got (`bodyEnded`: our message stream was read to
 * its end, so the dot is out). Exported for the tests' table of cases; the fault-peer tests check it against real
 * sessions.
 */
export function classifySmtpError(err: NodemailerError, progress: SendProgress): SendOutcome {
  const { bodyEnded } = progress;
  const code = err.responseCode;
  const response = err.response ?? err.message;
  if (code !== undefined && code >= 400) {
    // The relay answered: whatever phase, this reply is its decision, so nothing is uncertain about it.
    const stage = stageOf(err.command);
    // 530 "authentication required" (RFC 4954) is about our session, not this message: fix the credentials, send again.
    if (code === 530) return { kind: 'transient', code, response, stage: 'auth' };
    const isEnvelopeOrData = err.code === 'EENVELOPE' || err.code === 'EMESSAGE';
    if (isEnvelopeOrData && code >= 500 && code !== 503 && (stage === 'mail' || stage === 'rcpt' || stage === 'data')) {
      return { kind: 'permanent', code, response, stage, rejected: rejectionsOf(err) };
    }
    return { kind: 'transient', code, response, stage: bodyEnded ? 'data' : stage };
  }
  if (err.code === 'EMESSAGE' && err.command === 'MAIL FROM') {
    // nodemailer refuses, before MAIL FROM, a message larger than the SIZE the relay advertised: the relay's own
    // answer would be 552 (RFC 1870), and sending it again gets the same.
    return { kind: 'permanent', code: 552, response: `${describe(err)} (the relay's advertised SIZE)`, stage: 'mail', rejected: [] };
  }
  if (bodyEnded) {
    return { kind: 'uncertain', detail: `${describe(err)} (after the whole message was sent, before the relay's reply: it may have been accepted)` };
  }
  // No reply: which step was waiting is only known as far as we tracked it (nodemailer says CONN for every drop).
  const known = err.command === 'CONN' || err.command === 'API' ? undefined : err.command;
  const stage: SmtpStage = progress.bodyStarted ? 'data' : known !== undefined ? stageOf(known) : progress.inSession ? 'mail' : 'connect';
  return { kind: 'transient', code: null, response: describe(err), stage };
}

function relayTls(relay: SmtpRelay, extraCa: string | Buffer | undefined): { ca?: Array<string | Buffer>; rejectUnauthorized: boolean; servername?: string } {
  const ca: Array<string | Buffer> = [];
  if (relay.tlsCaFile !== null) {
    try {
      ca.push(readFileSync(relay.tlsCaFile));
    } catch (e) {
      throw new TocsinError('TOCSIN_CONFIG_INVALID', `TOCSIN_SMTP_URL: tlsCa ${relay.tlsCaFile} cannot be read (${(e as Error).message})`);
    }
  }
  if (extraCa !== undefined) ca.push(extraCa);
  return { ...(ca.length > 0 ? { ca } : {}), rejectUnauthorized: relay.tlsRejectUnauthorized };
}

/** Creates a sender for one relay. Throws TOCSIN_CONFIG_INVALID for a bad URL, From or CA file. */
export function createSmtpSender(options: SmtpSenderOptions): SmtpSender {
  const { relay, problems } = parseSmtpUrl(options.url);
  const parsedFrom = parseMailFrom(options.from);
  const all = [...problems, ...parsedFrom.problems];
  if (relay === null || parsedFrom.from === null || all.length > 0) {
    throw new TocsinError('TOCSIN_CONFIG_INVALID', `mail settings have ${all.length} problem(s)`, { details: all });
  }
  const auth = relay.user === null ? null : { user: relay.user, pass: relay.pass ?? '' };
  const from: MailAddress = parsedFrom.from.name === null ? { address: parsedFrom.from.address } : { address: parsedFrom.from.address, name: parsedFrom.from.name };
  const tls = relayTls(relay, options.tlsCa);
  const maxConnections = options.maxConnections ?? relay.maxConnections ?? 4;
  const maxMessages = options.maxMessagesPerConnection ?? 100;
  const idleMs = options.idleTimeoutMs ?? 15_000;
  const maxBytes = options.maxMessageBytes ?? 25 * 1024 * 1024;
  const connOptions: SMTPConnection.Options = {
    host: relay.host,
    port: relay.port,
    secure: relay.secure,
    requireTLS: relay.startTls === 'required',
    ignoreTLS: relay.startTls === 'never',
    tls,
    name: relay.name ?? hostname(),
    connectionTimeout: options.connectTimeoutMs ?? 10_000,
    greetingTimeout: options.greetingTimeoutMs ?? 30_000,
    socketTimeout: options.socketTimeoutMs ?? 60_000,
    logger: false,
  };

  const idle: PooledConnection[] = [];
  let open = 0;
  let inFlight = 0;
  let closed = false;
  const waiters: Array<() => void> = [];
  const drained: Array<() => void> = [];

  function discard(p: PooledConnection): void {
    if (p.idleTimer) clearTimeout(p.idleTimer);
    p.idleTimer = null;
    const i = idle.indexOf(p);
    if (i >= 0) idle.splice(i, 1);
    if (!p.dead) {
      p.dead = true;
      open--;
      waiters.shift()?.();
    }
    // QUIT politely when the session is usable; close() in any case so no socket outlives the sender.
    try { p.conn.quit(); } catch { /* already closed */ }
    setTimeout(() => p.conn.close(), 1000).unref();
  }

  /** Opens a connection (greeting, EHLO, STARTTLS, AUTH) or resolves with the transient outcome why not. */
  function openConnection(): Promise<PooledConnection | SendOutcome> {
    open++;
    const conn = new SMTPConnection(connOptions);
    const p: PooledConnection = { conn, messages: 0, dead: false, idleTimer: null };
    const markDead = (): void => {
      if (p.dead) return;
      p.dead = true;
      open--;
      const i = idle.indexOf(p);
      if (i >= 0) idle.splice(i, 1);
      if (p.idleTimer) clearTimeout(p.idleTimer);
      waiters.shift()?.();
    };
    return new Promise((resolve) => {
      let phase: 'connect' | 'auth' | 'ready' = 'connect';
      const fail = (err: NodemailerError): void => {
        if (phase === 'ready') return;
        const stage = phase;
        phase = 'ready';
        markDead();
        conn.close();
        resolve({ kind: 'transient', code: err.responseCode ?? null, response: err.response ?? describe(err), stage });
      };
      // Connect-phase failures (refused, greeting timeout, a 421 greeting, TLS) arrive as 'error' events, later
      // ones also reach the send callback; without a listener an 'error' event would crash the process.
      conn.on('error', (err: NodemailerError) => {
        fail(err);
        markDead();
      });
      conn.once('end', () => {
        fail(Object.assign(new Error('connection closed during the handshake'), { code: 'ECONNECTION' }));
        markDead();
      });
      conn.connect((err) => {
        if (err) return fail(err);
        if (auth === null) {
          phase = 'ready';
          return resolve(p);
        }
        phase = 'auth';
        conn.login(auth, (authErr) => {
          if (authErr) return fail(authErr);
          phase = 'ready';
          resolve(p);
        });
      });
    });
  }

  /** An idle live connection, a new one, or (at the limit) the next one released. */
  async function acquire(fresh: boolean): Promise<PooledConnection | SendOutcome> {
    for (;;) {
      if (closed) return { kind: 'transient', code: null, response: 'the sender was closed', stage: 'connect' };
      if (!fresh) {
        const p = idle.pop();
        if (p !== undefined) {
          if (p.idleTimer) clearTimeout(p.idleTimer);
          p.idleTimer = null;
          if (!p.dead) return p;
          continue;
        }
      }
      if (open < maxConnections) return openConnection();
      await new Promise<void>((r) => waiters.push(r));
    }
  }

  function release(p: PooledConnection): void {
    if (p.dead || closed || p.messages >= maxMessages) {
      discard(p);
      return;
    }
    p.idleTimer = setTimeout(() => discard(p), idleMs);
    p.idleTimer.unref();
    idle.push(p);
    waiters.shift()?.();
  }

  function sendOn(p: PooledConnection, raw: Buffer, envelopeFrom: string, recipients: readonly string[], messageId: string): Promise<{ outcome: SendOutcome; bodyStarted: boolean }> {
    const body = new TrackedBody(raw);
    return new Promise((resolve) => {
      p.conn.send({ from: envelopeFrom, to: [...recipients], size: raw.length }, body, (err, info) => {
        p.messages++;
        if (err) {
          const outcome = classifySmtpError(err, { inSession: true, bodyStarted: body.started, bodyEnded: body.ended });
          // A refusal leaves the session usable once reset; anything else ends it.
          if ((err.code === 'EENVELOPE' || err.code === 'EMESSAGE') && err.responseCode !== 421 && !p.dead) {
            p.conn.reset((resetErr) => {
              if (resetErr) discard(p);
              else release(p);
            });
          } else {
            discard(p);
          }
          resolve({ outcome, bodyStarted: body.started });
          return;
        }
        release(p);
        resolve({
          outcome: { kind: 'accepted', response: info.response, messageId, accepted: info.accepted, rejected: rejectionsOf(info) },
          bodyStarted: true,
        });
      });
    });
  }

  async function send(message: OutgoingMessage): Promise<SendOutcome> {
    // Throws TOCSIN_MAIL_MESSAGE_INVALID before any connection is touched.
    const built = await buildMessage(message, from, maxBytes);
    inFlight++;
    try {
      let p = await acquire(false);
      if (!('conn' in p)) return p;
      const reused = p.messages > 0;
      let result = await sendOn(p, built.raw, built.envelopeFrom, built.recipients, built.messageId);
      // A pooled connection the relay closed while it sat idle fails before a byte of the message went out:
      // that is no answer about this message, so try once more on a new connection.
      if (reused && !result.bodyStarted && result.outcome.kind === 'transient' && result.outcome.code === null) {
        p = await acquire(true);
        if (!('conn' in p)) return p;
        result = await sendOn(p, built.raw, built.envelopeFrom, built.recipients, built.messageId);
      }
      return result.outcome;
    } finally {
      inFlight--;
      if (inFlight === 0) for (const d of drained.splice(0)) d();
    }
  }

  async function verify(): Promise<{ ok: true } | { ok: false; outcome: SendOutcome }> {
    const p = await openConnection();
    if (!('conn' in p)) return { ok: false, outcome: p };
    discard(p);
    return { ok: true };
  }

  async function close(): Promise<void> {
    closed = true;
    // Sends still waiting for a connection end now (transient: nothing was sent); those on the wire finish.
    for (const w of waiters.splice(0)) w();
    if (inFlight > 0) await new Promise<void>((r) => drained.push(r));
    for (const p of [...idle]) discard(p);
  }

  return { send, verify, close, relay: redactSmtpUrl(options.url) };
}
