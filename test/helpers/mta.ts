/**
 * The real MTA for mail tests: Debian's postfix set up by scripts/ci-postfix.sh (127.0.0.1:2525, delivers every
 * address under `*.test` into one Maildir, `<root>/all/`, one copy per recipient with a `Delivered-To` header).
 * `.ci/run` exports TOCSIN_TEST_SMTP_URL and TOCSIN_TEST_MAILDIR_ROOT. Off CI without them the tests skip with the
 * reason; with CI=true and no MTA they fail, so CI can never pass by skipping them.
 */
import { randomBytes } from 'node:crypto';
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { simpleParser, type ParsedMail } from 'mailparser';

export interface Mta {
  /** TOCSIN_SMTP_URL of the test MTA (STARTTLS with its CA). */
  readonly url: string;
  readonly maildirRoot: string;
}

/** The MTA, or the reason to skip (off CI only); throws on CI when it is not configured. */
export function mtaOrSkip(): { mta: Mta; skip: false } | { mta: null; skip: string } {
  const url = process.env.TOCSIN_TEST_SMTP_URL;
  const maildirRoot = process.env.TOCSIN_TEST_MAILDIR_ROOT;
  if (url && maildirRoot) return { mta: { url, maildirRoot }, skip: false };
  if (process.env.CI === 'true') {
    throw new Error('CI=true but TOCSIN_TEST_SMTP_URL / TOCSIN_TEST_MAILDIR_ROOT are not set: .ci/run sets up postfix with scripts/ci-postfix.sh');
  }
  return { mta: null, skip: 'TOCSIN_TEST_SMTP_URL is not set (the real-MTA cases run in CI; as root: eval "$(scripts/ci-postfix.sh)")' };
}

/** A recipient domain no other test (or earlier run) uses, so a test reads only its own mail. */
export function uniqueDomain(): string {
  return `t${Date.now().toString(36)}${randomBytes(4).toString('hex')}.test`;
}

export interface Delivered {
  readonly path: string;
  readonly raw: Buffer;
  readonly parsed: ParsedMail;
}

/** The value of the first `Delivered-To` header in the message head (postfix adds it on top). */
function deliveredTo(raw: Buffer): string | null {
  const headEnd = raw.indexOf('\r\n\r\n') >= 0 ? raw.indexOf('\r\n\r\n') : raw.indexOf('\n\n');
  const head = raw.subarray(0, headEnd >= 0 ? headEnd : Math.min(raw.length, 65536)).toString('latin1');
  const m = /^Delivered-To:\s*(\S+)\s*$/im.exec(head);
  return m?.[1]?.toLowerCase() ?? null;
}

async function readHead(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(4096);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Every message delivered to `address` so far (Maildir new/ and cur/). */
export async function messagesFor(mta: Mta, address: string): Promise<Delivered[]> {
  const out: Delivered[] = [];
  const want = address.toLowerCase();
  for (const sub of ['new', 'cur']) {
    const dir = join(mta.maildirRoot, 'all', sub);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue; // nothing delivered yet: postfix creates the Maildir with the first message
      throw new Error(`cannot read ${dir} (${code ?? String(e)}): the Maildir belongs to the tocsin-mail user; run the mail tests as root`);
    }
    for (const name of names.sort()) {
      const path = join(dir, name);
      let raw: Buffer;
      try {
        // Postfix puts Delivered-To near the top: look at the head before reading (and parsing) the whole file.
        if (deliveredTo(await readHead(path)) !== want) continue;
        raw = await readFile(path);
      } catch {
        continue; // moved from new/ to cur/ meanwhile
      }
      out.push({ path, raw, parsed: await simpleParser(raw) });
    }
  }
  return out;
}

/** Waits until `address` has at least `n` messages (postfix delivers asynchronously after its 250), or throws. */
export async function waitForMessages(mta: Mta, address: string, n: number, timeoutMs = 20_000): Promise<Delivered[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await messagesFor(mta, address);
    if (got.length >= n) return got;
    if (Date.now() > deadline) {
      throw new Error(`${address}: ${got.length} of ${n} message(s) delivered within ${timeoutMs} ms (see /var/log/postfix-tocsin.log)`);
    }
    await sleep(100);
  }
}
