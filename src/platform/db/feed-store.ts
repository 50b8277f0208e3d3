/**
 * Feed imports in PostgreSQL (migration 0007 says where rows go and why): one import per file, its rows with
 * provenance, Exchange rows also as observations with their assessment, and the quarantine. Every write
 * takes an executor so that the service can run one file's import in one transaction (a file rejected
 * half-way, or a repeated delivery, leaves nothing behind). Rows go as one JSON parameter expanded by
 * json_to_recordset: a batch of thousands is one round trip. `json`, not `jsonb` as in the scan store: each
 * row carries a nested object (its fields), which jsonb_to_recordset turns into text and parses again per row
 * (measured about 2x slower on 5,000-row batches, on a busy shared machine).
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
 * Rows of one import. A row whose (feed, report type, ip, port, report date) is stored already is a duplicate
 * (ON CONFLICT DO NOTHING, also within the batch); only new Exchange rows get an observation and an assessment.
 * Returns how many were new.
 */
export async function insertFeedRows(db: Executor, importId: number, feed: string, rows: readonly StoredFeedRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  // The knowledge base's verdicts repeat per build: each distinct one is sent once and joined by key (a row
  // carrying its own ~90 CVE ids made a 5,000-row batch 14 MB of JSON).
  const verdictKey = new Map<FeedAssessment, number>();
  for (const s of rows) if (s.assessment !== null && !verdictKey.has(s.assessment)) verdictKey.set(s.assessment, verdictKey.size);
  const input = rows.map((s) => {
    const r = s.row;
    return {
      line: s.line, kind: r.kind, ip: r.ip, port: r.port, transport: r.transport, hostname: r.hostname, report_type: r.reportType,
      report_date: s.reportDate, seen_at: r.seenAt, tags: r.tags, reported_cves: r.reportedCves, compromised: r.compromised,
      product: r.product, build: r.build, build_precision: r.buildPrecision, fields: r.fields, raw: s.raw, assessed: s.assessment !== null,
    };
  });
  // Two statements, no join of the inserted rows back to the input: the first stores the rows and says which
  // were new (and their observation ids), the second stores those rows' observations and assessments.
  const fresh = (await sql<{ line: number; observation_id: number | null }>`
    INSERT INTO feed_observations (import_id, observation_id, feed, kind, report_type, report_date, ip, port, transport,
                                   hostname, seen_at, tags, reported_cves, compromised, product, build, build_precision,
                                   fields, line, raw)
    SELECT ${importId}::bigint, CASE WHEN assessed THEN nextval('observations_id_seq') END, ${feed}, kind, report_type,
           report_date, ip, port, transport, hostname, seen_at, tags, reported_cves, compromised, product, build,
           build_precision, fields, line, raw
    FROM json_to_recordset(${jsonForPostgres(input)}::json) AS t (
      line int, kind text, ip inet, port int, transport text, hostname text, report_type text, report_date date,
      seen_at timestamptz, tags text[], reported_cves text[], compromised boolean, product text, build text,
      build_precision text, fields jsonb, raw text, assessed boolean)
    ORDER BY line
    ON CONFLICT (feed, report_type, ip, (coalesce(port, -1)), report_date) DO NOTHING
    RETURNING line, observation_id`.execute(db)).rows;
  const ids = new Map<number, number>();
  for (const f of fresh) if (f.observation_id !== null) ids.set(f.line, f.observation_id);
  if (ids.size === 0) return fresh.length;
  const judged = rows.flatMap((s) => {
    const id = ids.get(s.line);
    if (id === undefined || s.assessment === null) return [];
    const r = s.row;
    return [{
      id, k: verdictKey.get(s.assessment) ?? 0, ip: r.ip, port: r.port, hostname: r.hostname, tls: s.tls, product: r.product,
      build_precision: r.buildPrecision, scanned_at: r.seenAt ?? `${s.reportDate}T00:00:00Z`,
    }];
  });
  const verdicts = [...verdictKey].map(([a, k]) => ({
    k, kb_revision: a.kbRevision, edition: a.edition, build: a.build, cu: a.cu, su: a.su, vulnerable: a.vulnerable, indeterminate: a.indeterminate, notes: a.notes,
  }));
  await sql`
    WITH v AS MATERIALIZED (
      SELECT * FROM json_to_recordset(${jsonForPostgres(verdicts)}::json) AS t (
        k int, kb_revision text, edition text, build text, cu text, su text, vulnerable text[], indeterminate text[], notes jsonb)
    ), input AS MATERIALIZED (
      SELECT i.*, v.kb_revision, v.edition, v.build, v.cu, v.su, v.vulnerable, v.indeterminate, v.notes
      FROM json_to_recordset(${jsonForPostgres(judged)}::json) AS i (
        id bigint, k int, ip inet, port int, hostname text, tls boolean, product text, build_precision text, scanned_at timestamptz)
      JOIN v ON v.k = i.k
    ), obs AS (
      INSERT INTO observations (id, source, ip, port, hostname, tls, product, edition, build, build_precision, cu, su, scanned_at)
      SELECT id, ${`feed:${feed}`}, ip, port, hostname, tls, product, edition, build, build_precision, cu, su, scanned_at FROM input
    )
    INSERT INTO assessments (observation_id, kb_revision, vulnerable, indeterminate, notes)
    SELECT id, kb_revision, vulnerable, indeterminate, notes FROM input ORDER BY id`.execute(db);
  return fresh.length;
}

export async function insertQuarantine(db: Executor, importId: number, s: Pick<FeedImportStart, 'feed' | 'format' | 'file'>, lines: readonly QuarantinedLine[]): Promise<void> {
  if (lines.length === 0) return;
  await sql`
    INSERT INTO feed_quarantine (import_id, feed, format, file, line, raw, error)
    SELECT ${importId}::bigint, ${s.feed}, ${s.format}, ${s.file}, line, raw, error
    FROM json_to_recordset(${jsonForPostgres(lines)}::json) AS t (line int, raw text, error text)
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
