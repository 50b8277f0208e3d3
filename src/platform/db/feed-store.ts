/**
 * Feed imports in PostgreSQL (migration 0007 says where rows go and why): one import per file, its rows with
 * provenance, Exchange rows also as observations with their assessment, and the quarantine. Every write
 * takes an executor so that the service can run one file's import in one transaction (a file rejected
 * half-way, or a repeated delivery, leaves nothing behind). Rows arrive by COPY into a temporary staging
 * table and are moved from there set-based, a chunk at a time (FeedStage says why).
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { FeedRow } from '../../ingest/types.js';
import type { DbSchema } from './schema.js';
import { jsonForPostgres } from './scan-store.js';
import { verdictSetIds } from './verdict-sets.js';

type Executor = Kysely<DbSchema>;

export interface FeedImportStart {
  readonly feed: string;
  readonly format: string;
  readonly file: string;
  readonly reportType: string | null;
  readonly reportDate: string | null;
}

/** The knowledge base's judgement of an Exchange row (the scan's assess() output, without the target). */
export interface FeedAssessment {
  readonly kbRevision: string | null;
  readonly edition: string | null;
  readonly build: string | null;
  readonly cu: string | null;
  readonly su: string | null;
  readonly vulnerable: readonly string[];
  readonly indeterminate: readonly string[];
  readonly notes: readonly string[];
}

export interface StoredFeedRow {
  readonly line: number;
  readonly raw: string;
  readonly row: FeedRow;
  /** The row's report date, or the import's date when neither the file nor the row has one. */
  readonly reportDate: string;
  /** Set for `exchange` rows: stored as an observation and its assessment. */
  readonly assessment: FeedAssessment | null;
  /** What the observation records as TLS (feeds do not say; https ports are taken as TLS). */
  readonly tls: boolean;
}

export interface QuarantinedLine {
  readonly line: number;
  readonly raw: string;
  readonly error: string;
}

export interface ImportCounts {
  readonly rowsRead: number;
  readonly imported: number;
  readonly duplicate: number;
  readonly quarantined: number;
  readonly skipped: number;
}

export async function beginImport(db: Executor, s: FeedImportStart): Promise<number> {
  const r = await db.insertInto('feed_imports')
    .values({ feed: s.feed, format: s.format, file: s.file, report_type: s.reportType, report_date: s.reportDate })
    .returning('id').executeTakeFirstOrThrow();
  return r.id;
}

/** The import that already stored this content (sha256 of the decompressed report), or null. */
export async function importOfContent(db: Executor, sha256: Buffer): Promise<{ id: number; file: string } | null> {
  const r = await db.selectFrom('feed_imports').select(['id', 'file']).where('sha256', '=', sha256).executeTakeFirst();
  return r ?? null;
}

export async function finishImport(db: Executor, id: number, sha256: Buffer, c: ImportCounts): Promise<void> {
  await db.updateTable('feed_imports').set({
    sha256, rows_read: c.rowsRead, imported: c.imported, duplicate: c.duplicate, quarantined: c.quarantined, skipped: c.skipped,
    finished_at: sql<Date>`now()`,
  }).where('id', '=', id).execute();
}

/**
 * One file's rows on their way in, encoded as COPY text (tab-separated, `\N` for NULL): a chunk is streamed with
 * COPY FROM STDIN into a temporary staging table and moved from there by one set-based statement (moveStaged).
 * Measured against the array-parameter statement this replaced (bench/README.md, feeds-ingest.ts): no array
 * literals for the server to parse per column, no quoting of every element on the client. Quarantined lines
 * travel in the same stream (only line, raw and error set): a connection in COPY cannot run another statement,
 * and holding them back would make memory grow with a file of bad lines.
 *
 * The knowledge base's verdicts repeat per build: each distinct one gets a small key, is sent once per file
 * (stageVerdicts) and joined by key; its CVE arrays are a stored verdict set (migration 0028), so neither the
 * stage nor the assessment row carries the 33-156 CVE ids.
 */
export class FeedStage {
  /** Full pieces of the chunk's COPY text, UTF-8. */
  private pieces: Buffer[] = [];
  private piece: Buffer = Buffer.allocUnsafe(PIECE);
  private used = 0;
  private rows = 0;
  private lines = 0;
  /** Every distinct assessment of the file, by identity (judgeWith caches them), with its key. */
  private readonly verdicts = new Map<FeedAssessment, number>();
  /** Assessments keyed since the last takeNewVerdicts(). */
  private fresh: Array<{ readonly k: number; readonly a: FeedAssessment }> = [];

  /**
   * @param omitFields field names left out of `fields` because a column or the raw line holds them already
   *   (the Shadowserver `ip`, `port`, `timestamp`, ...: ~40% of the jsonb per row).
   */
  constructor(private readonly omitFields: ReadonlySet<string> = new Set()) {}

  /** Rows (imported or duplicates) in the current chunk. */
  get size(): number {
    return this.rows;
  }

  /** Rows and quarantined lines in the current chunk. */
  get count(): number {
    return this.lines;
  }

  add(s: StoredFeedRow): void {
    const r = s.row;
    let k = '\\N';
    if (s.assessment !== null) {
      let n = this.verdicts.get(s.assessment);
      if (n === undefined) {
        n = this.verdicts.size;
        this.verdicts.set(s.assessment, n);
        this.fresh.push({ k: n, a: s.assessment });
      }
      k = String(n);
    }
    let fields: Readonly<Record<string, string>> = r.fields;
    if (this.omitFields.size > 0) {
      const kept: Record<string, string> = {};
      for (const key in r.fields) if (!this.omitFields.has(key)) kept[key] = r.fields[key] ?? '';
      fields = kept;
    }
    this.rows++;
    this.push(`${s.line}\t${r.kind}\t${plain(r.ip)}\t${r.port === null ? '\\N' : r.port}\t${text(r.transport)}\t${text(r.hostname)}\t` +
      `${plain(r.reportType)}\t${plain(s.reportDate)}\t${plain(r.seenAt)}\t${text(textArrayLiteral(r.tags))}\t` +
      `${text(textArrayLiteral(r.reportedCves))}\t${r.compromised ? 't' : 'f'}\t${plain(r.product)}\t${plain(r.build)}\t` +
      `${plain(r.buildPrecision)}\t${text(jsonForPostgres(fields))}\t${text(s.raw)}\t${k}\t${s.tls ? 't' : 'f'}\t\\N\n`);
  }

  quarantine(q: QuarantinedLine): void {
    this.push(`${q.line}${'\t\\N'.repeat(15)}\t${text(q.raw)}\t\\N\t\\N\t${text(q.error)}\n`);
  }

  /** The chunk as COPY text (UTF-8 pieces), and a fresh chunk begins. */
  take(): Buffer[] {
    if (this.used > 0) this.pieces.push(this.piece.subarray(0, this.used));
    const out = this.pieces;
    this.pieces = [];
    this.piece = Buffer.allocUnsafe(PIECE);
    this.used = 0;
    this.rows = 0;
    this.lines = 0;
    return out;
  }

  /** Assessments first seen since the last call (to be staged before the rows that use them are moved). */
  takeNewVerdicts(): ReadonlyArray<{ readonly k: number; readonly a: FeedAssessment }> {
    const out = this.fresh;
    this.fresh = [];
    return out;
  }

  /**
   * Each row is encoded into a large buffer as soon as it is built: no per-row string stays alive for the
   * young-generation collector to copy, and no chunk-sized string is joined and encoded again at the end
   * (joining 512-row strings and encoding the chunk was ~25% of the importer's CPU in a profile).
   */
  private push(row: string): void {
    this.lines++;
    const most = row.length * 3;
    if (this.used + most > this.piece.length) {
      if (this.used > 0) this.pieces.push(this.piece.subarray(0, this.used));
      this.piece = Buffer.allocUnsafe(Math.max(PIECE, most));
      this.used = 0;
    }
    this.used += this.piece.write(row, this.used, 'utf8');
  }
}

/** Bytes per piece of COPY text. */
const PIECE = 1 << 20;

const COPY_SPECIAL = /[\\\t\n\r\0]/;

/** A text value as a COPY text-format field: `\`, tab, LF and CR escaped; NUL (text cannot hold it) as U+FFFD. */
function text(value: string | null): string {
  if (value === null) return '\\N';
  if (!COPY_SPECIAL.test(value)) return value;
  return value.replace(/[\\\t\n\r\0]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\ufffd'));
}

const PLAIN = /^[A-Za-z0-9_.:+-]+$/;

/** A value the parsers produced in a canonical form (address, ISO time, date, build, ...): as it is when it needs no escaping. */
function plain(value: string | null): string {
  return value !== null && PLAIN.test(value) ? value : text(value);
}

const ESCAPED = /["\\]/;

/** One element of an array literal: NULL, or the text double-quoted with `"` and `\` escaped (NUL → U+FFFD). */
function element(value: string | null): string {
  if (value === null) return 'NULL';
  const t = value.includes('\0') ? value.replaceAll('\0', '\ufffd') : value;
  return ESCAPED.test(t) ? `"${t.replace(/["\\]/g, '\\$&')}"` : `"${t}"`;
}

/** A PostgreSQL array literal of text values. */
export function textArrayLiteral(values: readonly string[]): string {
  return values.length === 0 ? '{}' : `{${values.map(element).join(',')}}`;
}

/**
 * Creates the file's staging tables, dropped at the end of the transaction whatever happens (ON COMMIT DROP;
 * a rollback or a lost connection removes them too): TEMP tables write no WAL and are seen by no one else.
 * The columns are typed: the parsers wrote canonical values, and COPY converts each once.
 */
export async function createStage(db: Executor): Promise<void> {
  await sql`
    CREATE TEMP TABLE feed_stage (
      line integer NOT NULL, kind text, ip inet, port integer, transport text, hostname text, report_type text, report_date date,
      seen_at timestamptz, tags text[], reported_cves text[], compromised boolean, product text, build text, build_precision text,
      fields jsonb, raw text NOT NULL, k integer, tls boolean, error text
    ) ON COMMIT DROP`.execute(db);
  await sql`
    CREATE TEMP TABLE feed_stage_verdicts (
      k integer PRIMARY KEY, kb_revision text, edition text, build text, cu text, su text, set_id bigint NOT NULL, notes jsonb
    ) ON COMMIT DROP`.execute(db);
}

/**
 * Adds assessments to the file's verdict table (a few dozen per file), each with its verdict set (migration 0028),
 * whose ids are taken on `database` (not the import's transaction: verdict-sets.ts says why).
 */
export async function stageVerdicts(db: Executor, database: Executor, verdicts: ReadonlyArray<{ readonly k: number; readonly a: FeedAssessment }>): Promise<void> {
  if (verdicts.length === 0) return;
  const sets = await verdictSetIds(database, verdicts.map(({ a }) => a));
  const rows = verdicts.map(({ k, a }, i) => ({
    k, kb_revision: a.kbRevision, edition: a.edition, build: a.build, cu: a.cu, su: a.su, set_id: sets[i], notes: a.notes,
  }));
  await sql`
    INSERT INTO feed_stage_verdicts
    SELECT * FROM json_to_recordset(${jsonForPostgres(rows)}::json) AS t (
      k int, kb_revision text, edition text, build text, cu text, su text, set_id bigint, notes jsonb)`.execute(db);
}

/** Streams one chunk of COPY text into feed_stage on `client` (the transaction's connection). */
export async function copyStaged(client: pg.PoolClient, chunk: readonly Buffer[]): Promise<void> {
  if (chunk.length === 0) return;
  const stream = client.query(copyFrom(`COPY feed_stage (line, kind, ip, port, transport, hostname, report_type, report_date, seen_at, tags,
    reported_cves, compromised, product, build, build_precision, fields, raw, k, tls, error) FROM STDIN`));
  await pipeline(Readable.from(chunk), stream);
}

/**
 * Moves the staged chunk into the tables in one statement, empties the stage and returns how many rows were new.
 * A row whose (feed, report type, ip, port, report date) is stored already is a duplicate (ON CONFLICT DO
 * NOTHING, also within the file: rows go in line order, so the first wins); only new Exchange rows get an
 * observation and an assessment, written by the same statement from the rows the insert returned
 * (data-modifying CTEs); quarantined lines go to feed_quarantine. Nothing travels back but the count.
 */
export async function moveStaged(db: Executor, importId: number, s: Pick<FeedImportStart, 'feed' | 'format' | 'file'>): Promise<number> {
  const r = await sql<{ n: number }>`
    WITH ins AS (
      INSERT INTO feed_observations (import_id, observation_id, feed, kind, report_type, report_date, ip, port, transport,
                                     hostname, seen_at, tags, reported_cves, compromised, product, build, build_precision,
                                     fields, line, raw)
      SELECT ${importId}::bigint, CASE WHEN k IS NOT NULL THEN nextval('observations_id_seq') END, ${s.feed}, kind, report_type,
             report_date, ip, port, transport, hostname, seen_at, tags, reported_cves, compromised, product, build,
             build_precision, fields, line, raw
      FROM feed_stage
      WHERE error IS NULL
      ORDER BY line
      ON CONFLICT (feed, report_type, ip, (coalesce(port, -1)), report_date) DO NOTHING
      RETURNING line, observation_id, ip, port, hostname, product, build_precision,
                coalesce(seen_at, report_date::timestamp AT TIME ZONE 'UTC') AS scanned_at
    ), judged AS MATERIALIZED (
      -- the verdict key, not the verdicts: the file's few verdicts are joined by each insert
      -- (carried per row here, the CVE arrays spilled ~1.4 KB a row to temporary files)
      SELECT ins.observation_id AS id, ins.ip, ins.port, ins.hostname, st.tls, ins.product, ins.build_precision, ins.scanned_at, st.k
      FROM ins
      JOIN feed_stage st ON st.line = ins.line AND st.error IS NULL
      WHERE ins.observation_id IS NOT NULL
    ), obs AS (
      INSERT INTO observations (id, source, ip, port, hostname, tls, product, edition, build, build_precision, cu, su, scanned_at)
      SELECT j.id, ${`feed:${s.feed}`}, j.ip, j.port, j.hostname, j.tls, j.product, v.edition, v.build, j.build_precision, v.cu, v.su, j.scanned_at
      FROM judged j JOIN feed_stage_verdicts v ON v.k = j.k
    ), judgements AS (
      INSERT INTO assessment_rows (observation_id, kb_revision, verdict_set_id, notes)
      SELECT j.id, v.kb_revision, v.set_id, v.notes FROM judged j JOIN feed_stage_verdicts v ON v.k = j.k
    ), quarantined AS (
      INSERT INTO feed_quarantine (import_id, feed, format, file, line, raw, error)
      SELECT ${importId}::bigint, ${s.feed}, ${s.format}, ${s.file}, line, raw, error FROM feed_stage WHERE error IS NOT NULL ORDER BY line
    )
    SELECT count(*)::int AS n FROM ins`.execute(db);
  // TRUNCATE, not DELETE: the next chunk starts from an empty file instead of scanning dead rows.
  await sql`TRUNCATE feed_stage`.execute(db);
  return r.rows[0]?.n ?? 0;
}

/**
 * Session settings for a bulk import, for the rest of the transaction (SET LOCAL): a chunk's sorts and joins
 * fit in memory instead of spilling to temporary files (measured: 18-41 MB external merges per 20,000 rows at
 * the default 4 MB), and no JIT compilation of a statement that runs once per chunk (~170 ms each).
 */
export async function tuneForBulkImport(db: Executor): Promise<void> {
  await sql`SELECT set_config('work_mem', '64MB', true), set_config('jit', 'off', true)`.execute(db);
}

export interface QuarantineRecord {
  readonly id: number;
  readonly importId: number;
  readonly feed: string;
  readonly format: string;
  readonly file: string;
  readonly line: number;
  readonly raw: string;
  readonly error: string;
  readonly importedAt: string;
}

/** Every quarantined line, oldest first; keyset pages so memory stays flat. */
export async function* quarantineRecords(db: Executor, page = 1000): AsyncGenerator<QuarantineRecord> {
  let after = 0;
  for (;;) {
    const rows = await db.selectFrom('feed_quarantine').selectAll().where('id', '>', after).orderBy('id').limit(page).execute();
    for (const r of rows) {
      yield { id: r.id, importId: r.import_id, feed: r.feed, format: r.format, file: r.file, line: r.line, raw: r.raw, error: r.error, importedAt: r.imported_at.toISOString() };
    }
    if (rows.length < page) return;
    after = rows[rows.length - 1]?.id ?? after;
  }
}

/** Distinct addresses with an open port seen by a port-scanner feed (optionally one port), in address order. */
export async function* openPortAddresses(db: Executor, port: number | null, page = 5000): AsyncGenerator<string> {
  let after: string | null = null;
  for (;;) {
    const portFilter = port === null ? sql`TRUE` : sql`port = ${port}`;
    const afterFilter: RawBuilder<unknown> = after === null ? sql`TRUE` : sql`ip > ${after}::inet`;
    const rows: Array<{ ip: string }> = (await sql<{ ip: string }>`
      SELECT host(addr) AS ip FROM (
        SELECT DISTINCT ip AS addr FROM feed_observations
        WHERE kind = 'port-open' AND ${portFilter} AND ${afterFilter}
        ORDER BY ip LIMIT ${page}) d
      ORDER BY addr`.execute(db)).rows;
    for (const r of rows) yield r.ip;
    if (rows.length < page) return;
    after = rows[rows.length - 1]?.ip ?? after;
  }
}
