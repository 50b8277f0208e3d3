/**
 * Feed imports in PostgreSQL (migration 0007 says where rows go and why): one import per file, its rows with
 * provenance, Exchange rows also as observations with their assessment, and the quarantine. Every write
 * takes an executor so that the service can run one file's import in one transaction (a file rejected
 * half-way, or a repeated delivery, leaves nothing behind). A batch of rows is one statement: one array
 * parameter per column, unnested (FeedRowBatch says why).
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { FeedRow } from '../../ingest/types.js';
import type { DbSchema } from './schema.js';
import { jsonForPostgres } from './scan-store.js';

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
 * The rows of one statement, column by column. Each column goes to PostgreSQL as ONE array-literal parameter
 * that the statement unnests: a batch of tens of thousands of rows is one round trip, with no per-row JSON
 * for the server to parse (per-row JSON through json_to_recordset was most of the import's time) and no
 * generic value conversion on the client (the driver's array serialiser built each parameter by string
 * concatenation: measured 54 µs per row, mostly garbage collection). Elements are encoded once, when a row is
 * added; a parameter is one join. Ragged values (tags, CVE lists) are array literals of their own, cast per
 * row; `fields` is JSON text, cast to jsonb per row. Text cannot hold NUL in PostgreSQL and one hostile line
 * must not fail a file: NUL becomes U+FFFD, as jsonForPostgres does for the scan store.
 */
export class FeedRowBatch {
  private readonly cols: { readonly [K in Column]: ArrayColumn } = {
    line: new ArrayColumn(), kind: new ArrayColumn(), ip: new ArrayColumn(), port: new ArrayColumn(), transport: new ArrayColumn(),
    hostname: new ArrayColumn(), reportType: new ArrayColumn(), reportDate: new ArrayColumn(), seenAt: new ArrayColumn(),
    tags: new ArrayColumn(), reportedCves: new ArrayColumn(), compromised: new ArrayColumn(), product: new ArrayColumn(),
    build: new ArrayColumn(), buildPrecision: new ArrayColumn(), fields: new ArrayColumn(), raw: new ArrayColumn(),
    verdict: new ArrayColumn(), tls: new ArrayColumn(),
  };
  /** Distinct assessments of the batch (a report repeats few builds), by identity, with their index. */
  readonly verdicts = new Map<FeedAssessment, number>();
  private rows = 0;

  get size(): number {
    return this.rows;
  }

  add(s: StoredFeedRow): void {
    const r = s.row;
    const c = this.cols;
    this.rows++;
    c.line.push(String(s.line));
    c.kind.push(element(r.kind));
    c.ip.push(bare(r.ip));
    c.port.push(r.port === null ? 'NULL' : String(r.port));
    c.transport.push(element(r.transport));
    c.hostname.push(element(r.hostname));
    c.reportType.push(bare(r.reportType));
    c.reportDate.push(bare(s.reportDate));
    c.seenAt.push(bare(r.seenAt));
    c.tags.push(element(textArrayLiteral(r.tags)));
    c.reportedCves.push(element(textArrayLiteral(r.reportedCves)));
    c.compromised.push(r.compromised ? 't' : 'f');
    c.product.push(bare(r.product));
    c.build.push(bare(r.build));
    c.buildPrecision.push(bare(r.buildPrecision));
    c.fields.push(element(jsonForPostgres(r.fields)));
    c.raw.push(element(s.raw));
    c.tls.push(s.tls ? 't' : 'f');
    if (s.assessment === null) c.verdict.push('NULL');
    else {
      let k = this.verdicts.get(s.assessment);
      if (k === undefined) {
        k = this.verdicts.size;
        this.verdicts.set(s.assessment, k);
      }
      c.verdict.push(String(k));
    }
  }

  /** One column as a PostgreSQL array literal. */
  param(column: Column): string {
    return this.cols[column].literal();
  }
}

/**
 * Encoded elements of one column, joined every CHUNK elements into one flat string: a batch then keeps a few
 * long strings alive instead of one small string per row and column, which the young-generation collector
 * copied again and again (garbage collection was most of the client's CPU before).
 */
class ArrayColumn {
  private static readonly CHUNK = 512;
  private parts: string[] = [];
  private readonly chunks: string[] = [];

  push(element: string): void {
    this.parts.push(element);
    if (this.parts.length === ArrayColumn.CHUNK) {
      this.chunks.push(this.parts.join(','));
      this.parts = [];
    }
  }

  literal(): string {
    if (this.parts.length > 0) {
      this.chunks.push(this.parts.join(','));
      this.parts = [];
    }
    return `{${this.chunks.join(',')}}`;
  }
}

type Column = 'line' | 'kind' | 'ip' | 'port' | 'transport' | 'hostname' | 'reportType' | 'reportDate' | 'seenAt' | 'tags' | 'reportedCves'
  | 'compromised' | 'product' | 'build' | 'buildPrecision' | 'fields' | 'raw' | 'verdict' | 'tls';

const ESCAPED = /["\\]/;

/** One element of an array literal: NULL, or the text double-quoted with `"` and `\` escaped (NUL → U+FFFD). */
function element(text: string | null): string {
  if (text === null) return 'NULL';
  const t = text.includes('\0') ? text.replaceAll('\0', '\ufffd') : text;
  return ESCAPED.test(t) ? `"${t.replace(/["\\]/g, '\\$&')}"` : `"${t}"`;
}

const PLAIN = /^[A-Za-z0-9_.:+-]+$/;

/**
 * An element the parsers produced in a canonical form (address, ISO time, date, build, report type, product):
 * as it is when it can be written unquoted (the common case: no quoting, no copy), else as element() writes it.
 */
function bare(text: string | null): string {
  return text !== null && PLAIN.test(text) && (text.length !== 4 || text.toUpperCase() !== 'NULL') ? text : element(text);
}

/** A PostgreSQL array literal of text values. */
export function textArrayLiteral(values: readonly string[]): string {
  return values.length === 0 ? '{}' : `{${values.map(element).join(',')}}`;
}

/**
 * Stores one batch of an import in one statement and returns how many rows were new. A row whose (feed, report
 * type, ip, port, report date) is stored already is a duplicate (ON CONFLICT DO NOTHING, also within the
 * batch: rows go in line order, so the first wins); only new Exchange rows get an observation and an
 * assessment, written by the same statement from the rows the insert returned (data-modifying CTEs), so
 * nothing travels back to the client but the count.
 */
export async function insertFeedRows(db: Executor, importId: number, feed: string, b: FeedRowBatch): Promise<number> {
  if (b.size === 0) return 0;
  // The knowledge base's verdicts repeat per build: each distinct one is sent once and joined by key (a row
  // carrying its own ~90 CVE ids made a 5,000-row batch 14 MB of JSON).
  const verdicts = [...b.verdicts].map(([a, k]) => ({
    k, kb_revision: a.kbRevision, edition: a.edition, build: a.build, cu: a.cu, su: a.su, vulnerable: a.vulnerable, indeterminate: a.indeterminate, notes: a.notes,
  }));
  // `input` is read once (by the insert), so it streams from the arrays; what the observations need comes back
  // from RETURNING, and only the (line, verdict, tls) columns are unnested a second time.
  const r = await sql<{ n: number }>`
    WITH v AS MATERIALIZED (
      SELECT * FROM json_to_recordset(${jsonForPostgres(verdicts)}::json) AS t (
        k int, kb_revision text, edition text, build text, cu text, su text, vulnerable text[], indeterminate text[], notes jsonb)
    ), input AS (
      SELECT * FROM unnest(${b.param('line')}::int[], ${b.param('kind')}::text[], ${b.param('ip')}::inet[], ${b.param('port')}::int[],
                           ${b.param('transport')}::text[], ${b.param('hostname')}::text[], ${b.param('reportType')}::text[],
                           ${b.param('reportDate')}::date[], ${b.param('seenAt')}::timestamptz[], ${b.param('tags')}::text[],
                           ${b.param('reportedCves')}::text[], ${b.param('compromised')}::boolean[], ${b.param('product')}::text[],
                           ${b.param('build')}::text[], ${b.param('buildPrecision')}::text[], ${b.param('fields')}::text[],
                           ${b.param('raw')}::text[], ${b.param('verdict')}::int[])
        AS t (line, kind, ip, port, transport, hostname, report_type, report_date, seen_at, tags, reported_cves, compromised,
              product, build, build_precision, fields, raw, k)
    ), ins AS (
      INSERT INTO feed_observations (import_id, observation_id, feed, kind, report_type, report_date, ip, port, transport,
                                     hostname, seen_at, tags, reported_cves, compromised, product, build, build_precision,
                                     fields, line, raw)
      SELECT ${importId}::bigint, CASE WHEN k IS NOT NULL THEN nextval('observations_id_seq') END, ${feed}, kind, report_type,
             report_date, ip, port, transport, hostname, seen_at, tags::text[], reported_cves::text[], compromised, product, build,
             build_precision, fields::jsonb, line, raw
      FROM input
      ORDER BY line
      ON CONFLICT (feed, report_type, ip, (coalesce(port, -1)), report_date) DO NOTHING
      RETURNING line, observation_id, ip, port, hostname, product, build_precision,
                coalesce(seen_at, report_date::timestamp AT TIME ZONE 'UTC') AS scanned_at
    ), judged AS MATERIALIZED (
      SELECT ins.observation_id AS id, ins.ip, ins.port, ins.hostname, j.tls, ins.product, ins.build_precision, ins.scanned_at,
             v.kb_revision, v.edition, v.build, v.cu, v.su, v.vulnerable, v.indeterminate, v.notes
      FROM ins
      JOIN unnest(${b.param('line')}::int[], ${b.param('verdict')}::int[], ${b.param('tls')}::boolean[]) AS j (line, k, tls) ON j.line = ins.line
      JOIN v ON v.k = j.k
      WHERE ins.observation_id IS NOT NULL
    ), obs AS (
      INSERT INTO observations (id, source, ip, port, hostname, tls, product, edition, build, build_precision, cu, su, scanned_at)
      SELECT id, ${`feed:${feed}`}, ip, port, hostname, tls, product, edition, build, build_precision, cu, su, scanned_at FROM judged
    ), judgements AS (
      INSERT INTO assessments (observation_id, kb_revision, vulnerable, indeterminate, notes)
      SELECT id, kb_revision, vulnerable, indeterminate, notes FROM judged
    )
    SELECT count(*)::int AS n FROM ins`.execute(db);
  return r.rows[0]?.n ?? 0;
}

/**
 * Session settings for a bulk import, for the rest of the transaction (SET LOCAL): a batch's sorts and joins
 * fit in memory instead of spilling to temporary files (measured: 18-41 MB external merges per 20,000 rows at
 * the default 4 MB), and no JIT compilation of a statement that runs once per batch (~170 ms each).
 */
export async function tuneForBulkImport(db: Executor): Promise<void> {
  await sql`SELECT set_config('work_mem', '64MB', true), set_config('jit', 'off', true)`.execute(db);
}

export async function insertQuarantine(db: Executor, importId: number, s: Pick<FeedImportStart, 'feed' | 'format' | 'file'>, lines: readonly QuarantinedLine[]): Promise<void> {
  if (lines.length === 0) return;
  await sql`
    INSERT INTO feed_quarantine (import_id, feed, format, file, line, raw, error)
    SELECT ${importId}::bigint, ${s.feed}, ${s.format}, ${s.file}, line, raw, error
    FROM unnest(${`{${lines.map((l) => l.line).join(',')}}`}::int[], ${textArrayLiteral(lines.map((l) => l.raw))}::text[],
                ${textArrayLiteral(lines.map((l) => l.error))}::text[])
      AS t (line, raw, error)
    ORDER BY line`.execute(db);
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
