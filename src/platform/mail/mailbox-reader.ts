/**
 * Reads a mailbox the campaign's bounces and replies arrive in: a Maildir (a folder with cur/ and new/, one file
 * per message) or an mbox file (messages separated by `From ` lines, mboxrd/mboxo `>From ` quoting undone).
 * Streaming: one message in memory at a time, each capped (`maxBytes`: the rest is skipped and the entry says
 * `truncated`), lines of an mbox capped too. Each entry carries its SHA-256 (re-ingesting can skip what it has
 * seen) and a summary parsed with mailparser (decoded subject, sender, date, first text); a message mailparser
 * cannot read yields `parseError` instead: hostile or broken mail never ends the run.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { TocsinError } from '../../core/errors.js';

export type MailboxFormat = 'maildir' | 'mbox';

export interface MailboxOptions {
  /** Bytes of one message read at most (default 4 MiB). DSNs and replies put what matters first. */
  readonly maxBytes?: number;
  /** Characters of the decoded text kept (default 16 KiB). */
  readonly maxText?: number;
  /** Messages read at most (default 1,000,000). */
  readonly maxMessages?: number;
}

export interface MailSummary {
  readonly subject: string | null;
  /** The From address (lower case), or null. */
  readonly from: string | null;
  readonly date: Date | null;
  readonly messageId: string | null;
  /** The plain text (or HTML converted to text), capped. */
  readonly text: string;
}

export interface MailboxEntry {
  /** The Maildir file, or `mbox-path#n` (1-based). */
  readonly location: string;
  /** The message bytes as read (at most maxBytes). */
  readonly raw: Buffer;
  /** Bytes the message had (more than raw.length when truncated). */
  readonly size: number;
  readonly truncated: boolean;
  /** SHA-256 (hex) of the bytes read. */
  readonly sha256: string;
  readonly summary: MailSummary | null;
  readonly parseError: string | null;
}

const DEFAULTS = { maxBytes: 4 * 1024 * 1024, maxText: 16 * 1024, maxMessages: 1_000_000 };
/** An mbox line longer than this is cut (a line of megabytes is hostile, not mail). */
const MAX_LINE = 64 * 1024;

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** Maildir when PATH is a folder with cur/ or new/; mbox when it is a file. */
export async function detectMailboxFormat(path: string): Promise<MailboxFormat> {
  let s;
  try {
    s = await stat(path);
  } catch (e) {
    throw new TocsinError('TOCSIN_MAILBOX_UNREADABLE', `cannot read mailbox ${JSON.stringify(path)}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (s.isFile()) return 'mbox';
  if (s.isDirectory() && ((await isDir(join(path, 'cur'))) || (await isDir(join(path, 'new'))))) return 'maildir';
  throw new TocsinError('TOCSIN_MAILBOX_UNREADABLE', `${JSON.stringify(path)} is neither an mbox file nor a Maildir (a folder with cur/ and new/)`);
}

async function summarise(raw: Buffer, maxText: number): Promise<{ summary: MailSummary | null; parseError: string | null }> {
  try {
    const p = await simpleParser(raw, { keepDeliveryStatus: true, skipTextToHtml: true, skipImageLinks: true, maxHtmlLengthToParse: 1024 * 1024 });
    const text = p.text ?? '';
    return {
      summary: {
        subject: p.subject ?? null,
        from: p.from?.value[0]?.address?.toLowerCase() ?? null,
        date: p.date !== undefined && !Number.isNaN(p.date.getTime()) ? p.date : null,
        messageId: p.messageId ?? null,
        text: text.length > maxText ? text.slice(0, maxText) : text,
      },
      parseError: null,
    };
  } catch (e) {
    return { summary: null, parseError: e instanceof Error ? e.message.slice(0, 300) : String(e).slice(0, 300) };
  }
}

async function entry(location: string, raw: Buffer, size: number, maxText: number): Promise<MailboxEntry> {
  const { summary, parseError } = await summarise(raw, maxText);
  return { location, raw, size, truncated: size > raw.length, sha256: createHash('sha256').update(raw).digest('hex'), summary, parseError };
}

async function readCapped(path: string, max: number): Promise<{ raw: Buffer; size: number }> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const buf = Buffer.alloc(Math.min(size, max));
    let off = 0;
    while (off < buf.length) {
      const { bytesRead } = await fh.read(buf, off, buf.length - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return { raw: buf.subarray(0, off), size };
  } finally {
    await fh.close();
  }
}

async function* readMaildir(path: string, o: Required<MailboxOptions>): AsyncGenerator<MailboxEntry> {
  let n = 0;
  for (const sub of ['new', 'cur']) {
    let names: string[];
    try {
      names = await readdir(join(path, sub));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new TocsinError('TOCSIN_MAILBOX_UNREADABLE', `cannot read ${JSON.stringify(join(path, sub))}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    for (const name of names.sort()) {
      if (name.startsWith('.')) continue;
      if (n++ >= o.maxMessages) return;
      const file = join(path, sub, name);
      let got: { raw: Buffer; size: number };
      try {
        if (!(await stat(file)).isFile()) continue;
        got = await readCapped(file, o.maxBytes);
      } catch {
        continue; // moved between new/ and cur/ by a mail client meanwhile: seen under its new name
      }
      yield await entry(file, got.raw, got.size, o.maxText);
    }
  }
}

/** `From ` at the start of a line after an empty line (or at the start of the file) begins a message. */
async function* readMbox(path: string, o: Required<MailboxOptions>): AsyncGenerator<MailboxEntry> {
  let parts: Buffer[] = [];
  let kept = 0;
  let size = 0;
  let index = 0;
  let inMessage = false;
  let prevBlank = true;
  let emitted = 0;
  const flush = async (): Promise<MailboxEntry | null> => {
    if (!inMessage) return null;
    index++;
    let raw = Buffer.concat(parts);
    parts = [];
    // The empty line before the next `From ` separates messages; it is not part of this one.
    if (raw.length >= 2 && raw[raw.length - 1] === 0x0a && raw[raw.length - 2] === 0x0a) raw = raw.subarray(0, raw.length - 1);
    else if (raw.length >= 4 && raw.subarray(raw.length - 4).toString('latin1') === '\r\n\r\n') raw = raw.subarray(0, raw.length - 2);
    size -= kept - raw.length;
    const e = await entry(`${path}#${index}`, raw, size, o.maxText);
    kept = 0;
    size = 0;
    return e;
  };
  const addLine = (line: Buffer): void => {
    // mboxrd: `>From `, `>>From ` ... lose one `>`.
    const l = /^>+From /.test(line.subarray(0, 80).toString('latin1')) ? line.subarray(1) : line;
    size += l.length;
    if (kept + l.length <= o.maxBytes) {
      parts.push(l);
      kept += l.length;
    } else if (kept < o.maxBytes) {
      parts.push(l.subarray(0, o.maxBytes - kept));
      kept = o.maxBytes;
    }
  };
  let pending: Buffer = Buffer.alloc(0);
  let overlong = false;
  const lineOf = async function* (chunkLine: Buffer): AsyncGenerator<MailboxEntry> {
    const isFrom = prevBlank && chunkLine.subarray(0, 5).toString('latin1') === 'From ';
    if (isFrom) {
      const e = await flush();
      if (e !== null) {
        emitted++;
        yield e;
      }
      inMessage = true;
      prevBlank = false;
      return;
    }
    const body = chunkLine.subarray(0, chunkLine.length - (chunkLine.at(-1) === 0x0a ? 1 : 0));
    prevBlank = body.length === 0 || (body.length === 1 && body[0] === 0x0d);
    if (!inMessage) {
      // Text before the first `From ` line: not an mbox written by a mail system; read it as one message.
      inMessage = true;
    }
    addLine(chunkLine);
  };
  const stream = createReadStream(path, { highWaterMark: 64 * 1024 });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let buf = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
      let nl: number;
      while ((nl = buf.indexOf(0x0a)) >= 0) {
        const line = buf.subarray(0, nl + 1);
        buf = buf.subarray(nl + 1);
        if (overlong) {
          overlong = false; // the rest of a cut line: dropped, but counted (the entry says truncated)
          if (inMessage) size += line.length;
          continue;
        }
        for await (const e of lineOf(line)) {
          yield e;
          if (emitted >= o.maxMessages) return;
        }
      }
      if (buf.length > MAX_LINE) {
        // A line this long is not mail: keep its start, skip to its end.
        if (!overlong) {
          for await (const e of lineOf(Buffer.concat([buf.subarray(0, MAX_LINE), Buffer.from('\n')]))) yield e;
          size += buf.length - MAX_LINE - 1;
        } else if (inMessage) size += buf.length;
        overlong = true;
        buf = Buffer.alloc(0);
      }
      pending = Buffer.from(buf);
    }
    if (pending.length > 0 && !overlong) for await (const e of lineOf(pending)) yield e;
    const last = await flush();
    if (last !== null && last.size > 0) yield last;
  } finally {
    stream.destroy();
  }
}

/** The messages of a Maildir or an mbox, one at a time. */
export async function* readMailbox(path: string, opts: MailboxOptions = {}): AsyncGenerator<MailboxEntry> {
  const o: Required<MailboxOptions> = {
    maxBytes: opts.maxBytes ?? DEFAULTS.maxBytes,
    maxText: opts.maxText ?? DEFAULTS.maxText,
    maxMessages: opts.maxMessages ?? DEFAULTS.maxMessages,
  };
  const format = await detectMailboxFormat(path);
  if (format === 'maildir') yield* readMaildir(path, o);
  else yield* readMbox(path, o);
}
