/**
 * The demo's mail sink: an SMTP server on 127.0.0.1 (an ephemeral port unless told otherwise) that accepts every
 * message and saves it as an .eml file under TOCSIN_HOME/mail/<YYYY-MM-DD>/, so `tocsin demo` can run a campaign
 * without a relay and print where each warning went. The 250 reply names the file, so the sender's outcome carries
 * it (`accepted.response`), and `onMessage` reports it too.
 *
 * It only listens on loopback, takes no AUTH and no STARTTLS, and caps each message (552 above the cap): it is a
 * local tool, not a mail server.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SMTPServer, type SMTPServerDataStream } from 'smtp-server';
import { TocsinError } from '../../core/errors.js';
import { toHeaderText } from './message.js';

export interface SavedMail {
  readonly path: string;
  readonly envelopeFrom: string;
  readonly recipients: readonly string[];
  readonly bytes: number;
}

export interface LocalSinkOptions {
  /** TOCSIN_HOME: messages go under <home>/mail/<date>/. */
  readonly home: string;
  /** 0 (default) = an ephemeral port. */
  readonly port?: number;
  /** Largest message accepted, in bytes (default 10 MiB). */
  readonly maxMessageBytes?: number;
  /** Called after each message is on disk. */
  readonly onMessage?: (saved: SavedMail) => void;
  readonly now?: () => Date;
}

export interface LocalSink {
  /** TOCSIN_SMTP_URL for the sink: smtp://127.0.0.1:PORT?starttls=never */
  readonly url: string;
  readonly port: number;
  /** <home>/mail */
  readonly dir: string;
  /** Messages saved so far, oldest first. */
  readonly saved: readonly SavedMail[];
  close(): Promise<void>;
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

/** Starts the sink; throws TOCSIN_MAIL_SINK when it cannot listen or the mail folder cannot be made. */
export async function startLocalSink(options: LocalSinkOptions): Promise<LocalSink> {
  const dir = join(options.home, 'mail');
  const cap = options.maxMessageBytes ?? 10 * 1024 * 1024;
  const now = options.now ?? ((): Date => new Date());
  const saved: SavedMail[] = [];
  let seq = 0;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new TocsinError('TOCSIN_MAIL_SINK', `cannot create ${dir}: ${(e as Error).message}`);
  }

  async function save(body: Buffer, envelopeFrom: string, recipients: string[]): Promise<SavedMail> {
    const t = now();
    const day = t.toISOString().slice(0, 10);
    const dayDir = join(dir, day);
    await mkdir(dayDir, { recursive: true, mode: 0o700 });
    seq++;
    const name = `${t.toISOString().slice(11, 19).replace(/:/g, '')}-${String(seq).padStart(6, '0')}-${randomBytes(3).toString('hex')}.eml`;
    // The envelope is not in the message itself (Bcc-like recipients); keep it on top, as an MTA would.
    const head = `Return-Path: <${toHeaderText(envelopeFrom)}>\r\nX-Tocsin-Envelope-To: ${toHeaderText(recipients.join(', '))}\r\n`;
    const path = join(dayDir, name);
    const tmp = `${path}.tmp`;
    await writeFile(tmp, Buffer.concat([Buffer.from(head, 'utf8'), body]), { mode: 0o600 });
    await rename(tmp, path);
    const entry: SavedMail = { path, envelopeFrom, recipients, bytes: body.length };
    saved.push(entry);
    options.onMessage?.(entry);
    return entry;
  }

  const server = new SMTPServer({
    disabledCommands: ['STARTTLS', 'AUTH'],
    hideSTARTTLS: true,
    authOptional: true,
    logger: false,
    size: cap,
    banner: 'Tocsin local mail sink (messages are saved, not delivered)',
    onData(stream: SMTPServerDataStream, session, callback) {
      const chunks: Buffer[] = [];
      let n = 0;
      stream.on('data', (chunk: Buffer) => {
        n += chunk.length;
        if (n <= cap) chunks.push(chunk);
      });
      stream.once('end', () => {
        if (stream.sizeExceeded || n > cap) return callback(smtpError(552, `Message exceeds the sink's cap of ${cap} bytes`));
        const from = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
        save(Buffer.concat(chunks), from, session.envelope.rcptTo.map((r) => r.address)).then(
          (s) => callback(null, `Ok: saved ${s.path}`),
          (e: unknown) => callback(smtpError(451, `The sink could not save the message: ${(e as Error).message}`)),
        );
      });
    },
  });
  server.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
    });
  } catch (e) {
    throw new TocsinError('TOCSIN_MAIL_SINK', `the local mail sink cannot listen on 127.0.0.1:${options.port ?? 0}: ${(e as Error).message}`);
  }
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}?starttls=never`,
    port,
    dir,
    saved,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
