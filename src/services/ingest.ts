/**
 * The feed-import use case (`tocsin feeds import`, later a job after each Shadowserver download): files,
 * folders (recursively, in name order), `.gz`, `.zip` (each member a file of its own, reusing the forensics
 * kit's bounded ZIP reader) and `-` for stdin are read as streams, split into lines, parsed by the feed
 * format (named or detected from the first bytes and the name; src/ingest/registry.ts), and stored:
 *
 * - one transaction per file: a report-level problem (TOCSIN_FEED_REJECTED, e.g. a required column missing)
 *   or a repeated delivery (the same content, sha256 of the decompressed bytes, imported before) rolls back
 *   everything that file wrote, so it changes nothing;
 * - every row is imported, a duplicate (its (feed, report type, ip, port, report date) is stored), skipped
 *   (headers, comments, closed ports) or quarantined with file, line, raw text and the error;
 * - Exchange rows are judged by the product's knowledge base through the same assess() as a scanned host
 *   (at the precision the feed gives: Shadowserver's version is a CU), so each gets our per-CVE verdicts
 *   beside the feed's own tag; assess() results are cached per build (a report repeats few builds).
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { createGunzip } from 'node:zlib';
import type { Kysely } from 'kysely';
import { TocsinError, errno, isTocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { openZipEntry, readZipDirectory, unsupportedReason } from '../forensics/zip.js';
import { splitLines } from '../ingest/lines.js';
import { detectFormat, formatByName } from '../ingest/registry.js';
import type { FeedFormat, FeedRow } from '../ingest/types.js';
import { productRuntimes, type ProductRuntime } from '../products/registry.js';
import { assess } from '../scan/assess.js';
import {
  beginImport, copyStaged, createStage, finishImport, importOfContent, moveStaged, stageVerdicts, tuneForBulkImport, FeedStage,
  type FeedAssessment,
} from '../platform/db/feed-store.js';
import { withSession } from '../platform/db/raw-client.js';
import type { DbSchema } from '../platform/db/schema.js';

/**
 * Rows per staged chunk (one COPY and one moving statement): large enough that the per-statement cost
 * vanishes, small enough that two chunks (one being stored, one being parsed) stay a few tens of MB.
 */
const DEFAULT_BATCH = 50_000;
/**
 * Shadowserver fields a column or the raw line already holds: left out of `fields` (the raw line keeps them,
 * `fields` keeps the rest: asn, geo, sector, ...).
 */
const OMIT_FIELDS: Readonly<Record<string, ReadonlySet<string>>> = {
  shadowserver: new Set(['timestamp', 'ip', 'port', 'protocol', 'hostname', 'tag', 'version']),
};
/** Lines parsed between two turns of the event loop (so that the chunk being stored progresses meanwhile). */
const ROWS_PER_TURN = 256;
/** Bytes per read (and per inflated chunk): fewer, larger chunks through the line splitter. */
const READ_CHUNK = 1 << 20;
/** Bytes looked at to detect a format. */
const HEAD_BYTES = 4096;
/** Feed name per format when --source is not given. */
const DEFAULT_FEED: Readonly<Record<string, string>> = { shadowserver: 'shadowserver', 'nmap-xml': 'nmap', masscan: 'masscan', zmap: 'zmap' };
const FEED_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
/** Ports whose services speak TLS from the first byte (feeds do not say; observations need a value). */
const TLS_PORTS: ReadonlySet<number> = new Set([443, 465, 636, 993, 995, 8443, 9443]);

export interface IngestOptions {
  readonly db: Kysely<DbSchema>;
  /** auto (default) or a format id. */
  readonly format?: string;
  /** Shadowserver report type when the file name does not carry it. */
  readonly reportType?: string | null;
  /** Feed name stored as the source (default: the format's: shadowserver, nmap, masscan, zmap). */
  readonly source?: string | null;
  /** What `-` reads. */
  readonly stdin?: AsyncIterable<Buffer | string>;
  /** Products with loaded knowledge bases (default: the registry's). */
  readonly products?: readonly ProductRuntime[];
  /** Rows per statement (default 10,000). */
  readonly batchSize?: number;
  /** Today, for rows whose report date neither the file nor the row gives (injected for tests). */
  readonly today?: () => string;
  onFile?(result: FileResult): void | Promise<void>;
}

export interface FileResult {
  readonly file: string;
  readonly format: string | null;
  readonly feed: string | null;
  /** imported: stored (possibly all rows duplicates); duplicate-report: this content was imported before, nothing stored; rejected: nothing stored. */
  readonly status: 'imported' | 'duplicate-report' | 'rejected';
  readonly importId: number | null;
  /** For duplicate-report: the import that stored this content. */
  readonly sameAs: number | null;
  readonly rowsRead: number;
  readonly imported: number;
  readonly duplicate: number;
  readonly quarantined: number;
  readonly skipped: number;
  readonly error: { readonly code: string; readonly message: string } | null;
}

interface Source {
  /** For messages and provenance: the path, `archive.zip:member`, or `-`. */
  readonly file: string;
  /** Name the report type and date are read from (without .gz). */
  readonly baseName: string;
  open(): AsyncIterable<Buffer | string>;
  /** A problem found while listing (a broken archive): the file is rejected with it. */
  readonly problem?: string;
}

/** Imports every path in order; a rejected file does not stop the others. */
export async function importFeeds(paths: readonly string[], o: IngestOptions): Promise<FileResult[]> {
  const chosen = formatByName(o.format ?? 'auto');
  if (o.source !== undefined && o.source !== null && !FEED_NAME.test(o.source)) {
    throw new TocsinError('TOCSIN_ARG_INVALID', `--source must be a short name (a-z, 0-9, _ . -), got ${JSON.stringify(sanitiseText(o.source, { max: 70 }))}`);
  }
  if (o.reportType !== undefined && o.reportType !== null && !/^[a-z0-9_]{1,64}$/i.test(o.reportType)) {
    throw new TocsinError('TOCSIN_ARG_INVALID', `--report-type must be a Shadowserver report type such as scan_exchange, got ${JSON.stringify(sanitiseText(o.reportType, { max: 70 }))}`);
  }
  // Every path is checked before anything is imported: a typo must not leave half a batch of files in.
  const stats = new Map<string, Stats>();
  for (const p of paths) {
    if (p === '-') continue;
    try {
      stats.set(p, await stat(p));
    } catch (e) {
      throw new TocsinError('TOCSIN_INPUT_UNREADABLE', `cannot read ${sanitiseText(p, { max: 200 })} (${errno(e) ?? 'error'})`);
    }
  }
  const products = o.products ?? productRuntimes();
  const judge = judgeWith(products);
  const results: FileResult[] = [];
  for (const p of paths) {
    for await (const src of sources(p, stats.get(p), o.stdin)) {
      const r = await importOne(src, chosen, o, judge);
      results.push(r);
      await o.onFile?.(r);
    }
  }
  return results;
}

async function* sources(path: string, st: Stats | undefined, stdin: AsyncIterable<Buffer | string> | undefined): AsyncGenerator<Source> {
  if (path === '-') {
    if (stdin === undefined) throw new TocsinError('TOCSIN_INPUT_UNREADABLE', 'no standard input to read for "-"');
    yield { file: '-', baseName: '-', open: () => stdin };
    return;
  }
  if (st?.isDirectory() === true) {
    const names = (await readdir(path)).filter((n) => !n.startsWith('.')).sort();
    for (const n of names) {
      const child = join(path, n);
      const cs = await stat(child).catch(() => undefined);
      if (cs !== undefined && (cs.isDirectory() || cs.isFile())) yield* sources(child, cs, stdin);
    }
    return;
  }
  const lower = path.toLowerCase();
  if (lower.endsWith('.zip')) {
    let entries: Awaited<ReturnType<typeof readZipDirectory>>;
    try {
      entries = await readZipDirectory(path);
    } catch (e) {
      yield { file: path, baseName: basename(path), open: nothing, problem: `not a readable ZIP archive (${e instanceof Error ? e.message : String(e)})` };
      return;
    }
    for (const e of entries.filter((x) => !x.isDirectory).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const file = `${path}:${e.name}`;
      const name = basename(e.name);
      const why = unsupportedReason(e);
      if (why !== null) {
        yield { file, baseName: name, open: nothing, problem: why };
        continue;
      }
      // A member inflating past its declared size (a zip bomb or a lying header) is cut there by the reader:
      // then the file is rejected rather than imported in part.
      const member = async function* (): AsyncGenerator<Buffer> {
        let overflow = false;
        yield* openZipEntry(path, e, () => {
          overflow = true;
        });
        if (overflow) throw new TocsinError('TOCSIN_FEED_REJECTED', `${file}: the member inflates beyond its declared size`);
      };
      yield name.toLowerCase().endsWith('.gz')
        ? { file, baseName: name.slice(0, -3), open: () => gunzip(member()) }
        : { file, baseName: name, open: member };
    }
    return;
  }
  if (lower.endsWith('.gz')) {
    yield { file: path, baseName: basename(path).slice(0, -3), open: () => createReadStream(path, { highWaterMark: READ_CHUNK }).pipe(createGunzip({ chunkSize: READ_CHUNK })) };
    return;
  }
  yield { file: path, baseName: basename(path), open: () => createReadStream(path, { highWaterMark: READ_CHUNK }) };
}

async function* nothing(): AsyncGenerator<Buffer> {
  // a rejected source is never read
}

async function* gunzip(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const z = createGunzip();
  const feed = (async () => {
    for await (const c of chunks) if (!z.write(c)) await new Promise((r) => z.once('drain', r));
    z.end();
  })();
  feed.catch((e: unknown) => z.destroy(e instanceof Error ? e : new Error(String(e))));
  for await (const out of z as AsyncIterable<Buffer>) yield out;
  await feed;
}

/** The bytes of `src`, hashed as they pass, with the first HEAD_BYTES available before the rest is read. */
async function peeked(chunks: AsyncIterable<Buffer | string>, hash: Hash): Promise<{ head: string; all: AsyncIterable<Buffer>; close: () => Promise<void> }> {
  const it = chunks[Symbol.asyncIterator]();
  const first: Buffer[] = [];
  let size = 0;
  let done = false;
  while (size < HEAD_BYTES) {
    const n = await it.next();
    if (n.done === true) {
      done = true;
      break;
    }
    const b = typeof n.value === 'string' ? Buffer.from(n.value) : n.value;
    hash.update(b);
    first.push(b);
    size += b.length;
  }
  const head = Buffer.concat(first).subarray(0, HEAD_BYTES).toString('utf8');
  const all = (async function* (): AsyncGenerator<Buffer> {
    try {
      yield* first;
      if (done) return;
      for (;;) {
        const n = await it.next();
        if (n.done === true) return;
        const b = typeof n.value === 'string' ? Buffer.from(n.value) : n.value;
        hash.update(b);
        yield b;
      }
    } finally {
      // A rejected file stops early: close its stream (and file descriptor) now.
      if (!done) await it.return?.();
    }
  })();
  const close = async (): Promise<void> => {
    if (!done) await it.return?.();
  };
  return { head, all, close };
}

/** Thrown inside the transaction to roll back a repeated delivery. */
class SameContent extends Error {
  constructor(readonly importId: number) {
    super('same content');
  }
}

function emptyResult(src: Source, format: string | null, feed: string | null): Omit<FileResult, 'status' | 'error'> {
  return { file: src.file, format, feed, importId: null, sameAs: null, rowsRead: 0, imported: 0, duplicate: 0, quarantined: 0, skipped: 0 };
}

async function importOne(src: Source, chosen: FeedFormat | null, o: IngestOptions, judge: (r: FeedRow) => FeedAssessment): Promise<FileResult> {
  if (src.problem !== undefined) {
    return { ...emptyResult(src, null, null), status: 'rejected', error: { code: 'TOCSIN_FEED_REJECTED', message: `${src.file}: ${src.problem}` } };
  }
  const hash = createHash('sha256');
  let format: FeedFormat | null = chosen;
  let feed: string | null = null;
  const counts = { rowsRead: 0, imported: 0, duplicate: 0, quarantined: 0, skipped: 0 };
  let importId: number | null = null;
  const batchSize = Math.max(1, Math.floor(o.batchSize ?? DEFAULT_BATCH));
  const today = o.today ?? ((): string => new Date().toISOString().slice(0, 10));
  let close = async (): Promise<void> => undefined;
  try {
    const opened = await peeked(src.open(), hash);
    close = opened.close;
    const { head, all } = opened;
    format ??= detectFormat(head, src.baseName, src.file);
    const fmt = format;
    const feedName = o.source ?? DEFAULT_FEED[fmt.id] ?? fmt.id;
    feed = feedName;
    // One connection for the whole file: the transaction's statements and the COPY of its chunks (raw-client.ts).
    await withSession(o.db, (session) => session.db.transaction().execute(async (trx) => {
      const reportType = o.reportType ?? null;
      await tuneForBulkImport(trx);
      await createStage(trx);
      const id = await beginImport(trx, { feed: feedName, format: fmt.id, file: src.file, reportType, reportDate: null });
      importId = id;
      const reportDay = today();
      const where = { feed: feedName, format: fmt.id, file: src.file };
      const stage = new FeedStage(OMIT_FIELDS[fmt.id]);
      let fileReport: { type: string | null; date: string | null } = { type: null, date: null };
      // One chunk is stored while the next is parsed: the database and the parser work at the same time. One
      // statement at a time (they share the transaction's connection), so at most two chunks are in memory.
      let inFlight: Promise<void> = Promise.resolve();
      const store = async (chunk: readonly Buffer[], rows: number, verdicts: ReturnType<FeedStage['takeNewVerdicts']>): Promise<void> => {
        await stageVerdicts(trx, o.db, verdicts);
        await copyStaged(session.client, chunk);
        const n = await moveStaged(trx, id, where);
        counts.imported += n;
        counts.duplicate += rows - n;
      };
      const flush = async (): Promise<void> => {
        const rows = stage.size;
        const verdicts = stage.takeNewVerdicts();
        const chunk = stage.take();
        await inFlight;
        if (chunk.length === 0) return;
        const p = store(chunk, rows, verdicts);
        // Awaited at the next flush or below; until then a failure must not count as unhandled.
        p.catch(() => undefined);
        inFlight = p;
      };
      const ctx = { file: src.file, baseName: src.baseName, reportType };
      let sinceTurn = 0;
      try {
        for await (const item of fmt.parse(splitLines(all), ctx)) {
          // The parser's loop runs on microtasks only (the lines of a read are all buffered): without a turn of the
          // event loop the stored chunk's replies and COPY writes wait until the next read, i.e. until the next chunk
          // is parsed, and the moving statement then runs while the parser waits for it (measured: the import took
          // the sum of both sides' CPU, bench/README.md). A turn every few hundred lines (~10 ms) lets them overlap.
          if (++sinceTurn >= ROWS_PER_TURN) {
            sinceTurn = 0;
            await nextTurn();
          }
          if (item.type === 'skip') {
            counts.skipped++;
            continue;
          }
          counts.rowsRead++;
          if (item.type === 'problem') {
            counts.quarantined++;
            stage.quarantine({ line: item.line, raw: item.raw, error: item.error });
          } else {
            const r = item.row;
            if (fileReport.type === null) fileReport = { type: r.reportType, date: r.reportDate };
            stage.add({
              line: item.line, raw: item.raw, row: r, reportDate: r.reportDate ?? reportDay,
              assessment: r.kind === 'exchange' ? judge(r) : null, tls: r.port !== null && TLS_PORTS.has(r.port),
            });
          }
          if (stage.count >= batchSize) await flush();
        }
        await flush();
      } finally {
        // A rejected file stops here with a statement possibly still running: the rollback waits for it.
        await inFlight.catch(() => undefined);
      }
      await inFlight;
      const sha = hash.digest();
      const before = await importOfContent(trx, sha);
      if (before !== null) throw new SameContent(before.id);
      await finishImport(trx, id, sha, counts);
      await trx.updateTable('feed_imports').set({ report_type: fileReport.type, report_date: fileReport.date }).where('id', '=', id).execute();
    }));
    return { ...emptyResult(src, format.id, feed), ...counts, importId, status: 'imported', error: null };
  } catch (e) {
    if (e instanceof SameContent) {
      return { ...emptyResult(src, format?.id ?? null, feed), ...counts, imported: 0, duplicate: counts.rowsRead - counts.quarantined, sameAs: e.importId, status: 'duplicate-report', error: null };
    }
    if (isTocsinError(e) && (e.code === 'TOCSIN_FEED_REJECTED' || e.code === 'TOCSIN_FEED_FORMAT_UNKNOWN')) {
      return { ...emptyResult(src, format?.id ?? null, feed), status: 'rejected', error: { code: e.code, message: e.message } };
    }
    // A broken .gz stream or a file that vanished while being read: that file is rejected, nothing stored.
    const code = errno(e);
    if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR' || code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES' || code === 'ERR_INVALID_ZIP') {
      return { ...emptyResult(src, format?.id ?? null, feed), status: 'rejected', error: { code: 'TOCSIN_FEED_REJECTED', message: `${src.file}: cannot be read (${code}: ${e instanceof Error ? e.message : String(e)})` } };
    }
    throw e;
  } finally {
    await close().catch(() => undefined);
  }
}

/** Exchange rows → the knowledge base's verdicts via the scan's assess(), cached per (product, build, precision). */
function judgeWith(products: readonly ProductRuntime[]): (r: FeedRow) => FeedAssessment {
  const cache = new Map<string, FeedAssessment>();
  return (r) => {
    const key = `${r.product ?? ''}|${r.build ?? ''}|${r.buildPrecision ?? ''}`;
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const p = products.find((x) => x.id === r.product);
    let a: FeedAssessment;
    if (p === undefined) {
      a = { kbRevision: null, edition: null, build: r.build, cu: null, su: null, vulnerable: [], indeterminate: [], notes: [`no knowledge base for product ${r.product ?? '?'}`] };
    } else {
      const fp = { product: p.id, build: r.build, precision: r.buildPrecision, evidence: [], notes: r.build === null ? [] : [`build ${r.build} as the feed reported it (${r.buildPrecision === 'cu' ? 'cumulative-update precision' : 'exact'})`] };
      const rec = assess({ ip: r.ip, port: r.port ?? 0, hostname: null, tls: false }, new Map(), [], fp, p, r.seenAt ?? '');
      a = { kbRevision: p.kb.version, edition: rec.edition, build: rec.build, cu: rec.cu, su: rec.su, vulnerable: rec.vulnerable, indeterminate: rec.indeterminate, notes: rec.notes };
    }
    cache.set(key, a);
    return a;
  };
}
