/**
 * The scan engine's storage (src/scan/ports.ts) on PostgreSQL.
 *
 * recordBatch writes a batch in one transaction, in two stages (docs/ARCHITECTURE.md §1):
 * 1. observation stage, one set-based statement: the attempts, then for the attempts that were new their
 *    observation (facts, fingerprint, build), their responses' links and the raw response blobs not stored
 *    yet (content-addressed: raw-responses.ts);
 * 2. assessment stage (writeAssessments, also what `tocsin reassess` calls): the knowledge base's verdicts
 *    for those observations, with its revision.
 * Whole columns go as one jsonb parameter expanded by jsonb_to_recordset: a batch of hundreds is a few round
 * trips, whatever its size. Idempotent: attempts already stored (same scan, ip, port) are skipped by ON
 * CONFLICT, and only attempts inserted by this call get an observation, so replaying a batch after `kill -9`
 * stores nothing twice. The one exception: a stored `unanswered` attempt (no answer to the connect even
 * after retries) is replaced by a later result for it, which is how a resume recovers it.
 */
import { hostname } from 'node:os';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { sql, type Kysely } from 'kysely';
import type { ScanRecord } from '../../core/contracts/scan-record.js';
import type { Evidence } from '../../core/contracts/evidence.js';
import { TocsinError } from '../../core/errors.js';
import { sanitiseText } from '../../core/text.js';
import { attemptKey, type AttemptResult, type ScanSpec, type ScanStore, type StoredScan } from '../../scan/ports.js';
import type { AssessedFingerprint, DbSchema, Json } from './schema.js';
import { maintainPartitions } from './partitions.js';
import { DEFAULT_CAPS, KnownBlobs, packBlob, splitResponse, type Caps, type PackedBlob } from './raw-responses.js';
import { verdictSetIds } from './verdict-sets.js';

/** Rows fetched per page by records(); keyset pagination on (ip, port), so memory stays flat. */
const PAGE = 1000;

export interface ScanStoreOptions {
  /**
   * Revision of the knowledge base that judged the records (`loadExchangeKb().version`), stored with
   * every assessment so a verdict can be traced to the data behind it; null (the default) when unknown.
   */
  readonly kbRevision?: string | null;
  /** Storage caps of raw responses (tests make them small); default raw-responses.ts DEFAULT_CAPS. */
  readonly rawCaps?: Caps;
}

export function createScanStore(db: Kysely<DbSchema>, options: ScanStoreOptions = {}): ScanStore {
  const kbRevision = options.kbRevision ?? null;
  const caps = options.rawCaps ?? DEFAULT_CAPS;
  // Bodies seen on many hosts are compressed and sent once per process, not once per host.
  const known = new KnownBlobs();
  return {
    async createScan(spec: ScanSpec): Promise<StoredScan> {
      // This month's and next month's partitions exist (once per process and day; migration 0023).
      await maintainPartitions(db);
      const row = await db
        .insertInto('scans')
        // This process owns the scan from the start: owner + heartbeat tell running from interrupted (scan-liveness.ts).
        .values({ targets: JSON.stringify(spec.targets), ports: [...spec.ports], options: JSON.stringify(spec.options),
          owner_host: hostname(), owner_pid: process.pid, heartbeat_at: sql<Date>`now()` })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toStoredScan(row);
    },

    async getScan(id: string): Promise<StoredScan | null> {
      const n = parseScanId(id);
      if (n === null) return null;
      const row = await db.selectFrom('scans').selectAll().where('id', '=', n).executeTakeFirst();
      return row === undefined ? null : toStoredScan(row);
    },

    async doneKeys(scanId: string): Promise<Set<string>> {
      const n = parseScanId(scanId);
      const keys = new Set<string>();
      if (n === null) return keys;
      const rows = await db
        .selectFrom('scan_attempts')
        .select([sql<string>`host(ip)`.as('ip'), 'port'])
        .where('scan_id', '=', n)
        // unanswered attempts (no answer to the connect even after retries) are not done: resume redoes them
        .where('unanswered', '=', false)
        .execute();
      for (const r of rows) keys.add(attemptKey(r.ip, r.port));
      return keys;
    },

    async recordBatch(scanId: string, results: readonly AttemptResult[]): Promise<void> {
      const n = requireScanId(scanId);
      if (results.length === 0) return;
      // Exact duplicates inside one batch: keep the first (the database would too).
      const seen = new Set<string>();
      const batch = results.filter((r) => {
        const k = attemptKey(r.ip, r.port);
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      });
      await insertBatch(db, n, batch, kbRevision, caps, known);
    },

    records(scanId: string): AsyncIterable<ScanRecord> {
      return streamRecords(db, scanId);
    },

    async finishScan(scanId: string, status: 'finished' | 'failed'): Promise<void> {
      const n = requireScanId(scanId);
      await db.updateTable('scans').set({ status, finished_at: sql<Date>`now()` }).where('id', '=', n).execute();
    },
  };
}

/** Scan ids are positive integers printed in decimal; anything else names no scan. */
export function parseScanId(id: string): number | null {
  if (!/^[1-9]\d{0,14}$/.test(id.trim())) return null;
  return Number(id.trim());
}

/** Id of the most recently created scan, or null when none is stored. */
export async function latestScanId(db: Kysely<DbSchema>): Promise<string | null> {
  const row = await db.selectFrom('scans').select('id').orderBy('id', 'desc').limit(1).executeTakeFirst();
  return row === undefined ? null : String(row.id);
}

function requireScanId(id: string): number {
  const n = parseScanId(id);
  if (n === null) throw new TocsinError('TOCSIN_SCAN_NOT_FOUND', `no scan with id ${JSON.stringify(sanitiseText(id, { max: 40 }))} (scan ids are numbers)`);
  return n;
}

function toStoredScan(row: {
  id: number;
  targets: readonly string[];
  ports: number[];
  options: { readonly [key: string]: Json };
  status: 'running' | 'finished' | 'failed' | 'interrupted';
  started_at: Date;
  finished_at: Date | null;
}): StoredScan {
  return {
    id: String(row.id),
    targets: row.targets,
    ports: row.ports,
    options: row.options,
    status: row.status,
    startedAt: row.started_at.toISOString(),
    finishedAt: row.finished_at === null ? null : row.finished_at.toISOString(),
  };
}

/** One assessment row: the knowledge base applied to one stored observation. */
export interface AssessmentRow {
  readonly observationId: number;
  readonly kbRevision: string | null;
  readonly vulnerable: readonly string[];
  readonly indeterminate: readonly string[];
  readonly notes: readonly string[];
  /** Set when the assessment re-ran the detectors and fingerprint (reassess); null = the observation's own. */
  readonly fingerprint: AssessedFingerprint | null;
}

/** Anything that runs SQL: the database or an open transaction. */
type Executor = Kysely<DbSchema>;

/**
 * The batch in one transaction: observation stage, then assessment stage. (One statement for both was
 * measured at ~2% less store time per batch; two stages let `tocsin reassess` write assessments the same way.)
 */
async function insertBatch(db: Kysely<DbSchema>, scanId: number, batch: readonly AttemptResult[], kbRevision: string | null, caps: Caps, known: KnownBlobs): Promise<void> {
  const raw = await rawResponsesOf(batch, caps, known);
  // The batch's verdict sets (a handful for 256 hosts), committed before the transaction (verdict-sets.ts says why).
  const sets = await verdictSetIds(db, batch.map((r) => r.record ?? NO_VERDICTS));
  await db.transaction().execute(async (trx) => {
    const fresh = await writeObservations(trx, scanId, batch, raw);
    const rows: AssessmentRow[] = [];
    const ids: number[] = [];
    for (const { ord, observationId } of fresh) {
      const r = (batch[ord] as AttemptResult).record;
      if (r === null) continue;
      rows.push({ observationId, kbRevision, vulnerable: r.vulnerable, indeterminate: r.indeterminate, notes: r.notes, fingerprint: null });
      ids.push(sets[ord] as number);
    }
    await writeAssessments(trx, rows, ids);
  });
  // Committed: from now on these blobs need not be sent again.
  known.addAll(raw.blobs.map((b) => b.sha));
}

interface RawOfBatch {
  /** One row per response of an answered result: `ord` = its result's index in the batch, `i` = its place. */
  readonly links: ReadonlyArray<Record<string, Json>>;
  /** Blobs not known to be stored yet, compressed; the statement inserts those its new observations use. */
  readonly blobs: readonly PackedBlob[];
}

/** Blobs compressed between two turns of the event loop (~3 ms): handshakes in flight keep being served. */
const PACK_CHUNK = 32;

async function rawResponsesOf(batch: readonly AttemptResult[], caps: Caps, known: KnownBlobs): Promise<RawOfBatch> {
  const links: Array<Record<string, Json>> = [];
  // Heads are stored as they are: each is unique (Date, request ids), small, and a zlib stream per head
  // (its window allocated and freed per call) cost more CPU than the rest of storage put together.
  const pending = new Map<string, { readonly bytes: Buffer; readonly compress: boolean }>();
  batch.forEach((b, ord) => {
    if (b.record === null || b.responses === undefined) return;
    b.responses.forEach((resp, i) => {
      const { link, headBytes, bodyBytes } = splitResponse(resp, caps);
      links.push({
        ord, i, probe_id: link.probeId, url: link.url, status: link.status, redirects: [...link.redirects],
        head: link.head, body: link.body, body_bytes: link.bodyBytes,
        client_truncated: link.clientTruncated, stored_truncated: link.storedTruncated,
      });
      if (!known.has(link.head)) pending.set(link.head, { bytes: headBytes, compress: false });
      if (!known.has(link.body)) pending.set(link.body, { bytes: bodyBytes, compress: true });
    });
  });
  const blobs: PackedBlob[] = [];
  for (const [sha, p] of pending) {
    if (blobs.length > 0 && blobs.length % PACK_CHUNK === 0) await nextTurn();
    blobs.push(packBlob(p.bytes, sha, p.compress));
  }
  return { links, blobs };
}

/**
 * Observation stage, one statement. The batch goes as ONE jsonb parameter expanded by jsonb_to_recordset
 * (one native JSON.stringify; node-postgres's per-element array escaping cost more than the database work).
 * Attempts are inserted with ON CONFLICT (updating only unanswered rows); the rows written are joined back to
 * the input (inet equality, so two spellings of one IPv6 address match; DISTINCT ON keeps the first) and
 * only those get an observation, response links and the blobs those links need. The foreign keys between the
 * CTEs' inserts are checked at the statement's end. Returns the new observations' ids by batch index.
 */
async function writeObservations(
  db: Executor, scanId: number, batch: readonly AttemptResult[], raw: RawOfBatch,
): Promise<Array<{ ord: number; observationId: number }>> {
  const rows = batch.map((b, ord) => {
    const r = b.record;
    return {
      ord,
      ip: b.ip,
      port: b.port,
      hostname: b.hostname,
      outcome: b.outcome,
      detail: b.detail,
      attempted_at: b.attemptedAt,
      tries: Math.min(Math.max(1, Math.floor(b.tries ?? 1)), 1000),
      unanswered: b.unanswered === true && r === null,
      has_record: r !== null,
      r_ip: r?.ip ?? null,
      r_port: r?.port ?? null,
      r_hostname: r?.hostname ?? null,
      tls: r?.tls ?? null,
      product: r?.product ?? null,
      edition: r?.edition ?? null,
      build: r?.build ?? null,
      build_precision: r?.buildPrecision ?? null,
      cu: r?.cu ?? null,
      su: r?.su ?? null,
      status: r?.status ?? null,
      facts: b.facts,
      evidence: r?.evidence ?? [],
      detector_revisions: b.detectorRevisions,
      tls_cert: b.tlsCert,
      scanned_at: r?.scannedAt ?? null,
    };
  });
  // Blob bytes go as ONE binary bytea parameter (node-postgres sends a Buffer in binary format), each blob
  // a slice of it: no base64 in JavaScript, no base64 text in the JSON, no decode() in the database.
  const blobs: Array<{ sha: string; encoding: string; size: number; off: number; len: number }> = [];
  let off = 0;
  for (const b of raw.blobs) {
    blobs.push({ sha: b.sha, encoding: b.encoding, size: b.size, off, len: b.data.length });
    off += b.data.length;
  }
  const blobBytes = Buffer.concat(raw.blobs.map((b) => b.data), off);
  const r = await sql<{ ord: number; observation_id: number }>`
    WITH input AS (
      SELECT * FROM jsonb_to_recordset(${jsonForPostgres(rows)}::jsonb) AS t (
        ord int, ip inet, port int, hostname text, outcome text, detail text, attempted_at timestamptz,
        tries int, unanswered boolean, has_record boolean, r_ip inet, r_port int, r_hostname text, tls boolean, product text, edition text,
        build text, build_precision text, cu text, su text, status int, facts jsonb, evidence jsonb,
        detector_revisions jsonb, tls_cert jsonb, scanned_at timestamptz)
    ), ins AS (
      -- One row per address (inet equality: two spellings of one IPv6 address are one row; DO UPDATE may
      -- touch a row only once per statement). A stored unanswered attempt is replaced by the new result
      -- (its tries add up); every other stored attempt is left as it is.
      -- scan_month (the partition key, migration 0023) is the scan's start month: a function of scan_id, so the
      -- conflict target is still exactly (scan, ip, port), whenever the attempt happens.
      INSERT INTO scan_attempts (scan_id, ip, port, hostname, outcome, detail, attempted_at, tries, unanswered, scan_month)
      SELECT ${scanId}::bigint, ip, port, hostname, outcome, detail, attempted_at, tries, unanswered,
             (SELECT date_trunc('month', s.started_at AT TIME ZONE 'UTC')::date FROM scans s WHERE s.id = ${scanId}::bigint)
      FROM (SELECT DISTINCT ON (ip, port) * FROM input ORDER BY ip, port, ord) d ORDER BY ord
      ON CONFLICT (scan_id, ip, port, scan_month) DO UPDATE
        SET hostname = EXCLUDED.hostname, outcome = EXCLUDED.outcome, detail = EXCLUDED.detail,
            attempted_at = EXCLUDED.attempted_at, tries = least(scan_attempts.tries + EXCLUDED.tries, 32000),
            unanswered = EXCLUDED.unanswered
        WHERE scan_attempts.unanswered
      RETURNING id, ip, port
    ), fresh AS (
      -- Observation ids are taken here (volatile, so this CTE is computed once) and used by the inserts below.
      SELECT attempt_id, ord, CASE WHEN has_record THEN nextval('observations_id_seq') END AS observation_id
      FROM (
        SELECT DISTINCT ON (ins.id) ins.id AS attempt_id, input.ord, input.has_record
        FROM ins JOIN input ON input.ip = ins.ip AND input.port = ins.port
        ORDER BY ins.id, input.ord) d
    ), obs AS (
      INSERT INTO observations (id, attempt_id, scan_id, ip, port, hostname, tls, product, edition, build, build_precision,
                                cu, su, status, facts, evidence, detector_revisions, tls_cert, scanned_at)
      SELECT f.observation_id, f.attempt_id, ${scanId}::bigint, i.r_ip, i.r_port, i.r_hostname, i.tls, i.product, i.edition,
             i.build, i.build_precision, i.cu, i.su, i.status, i.facts, i.evidence, i.detector_revisions, i.tls_cert, i.scanned_at
      FROM fresh f JOIN input i ON i.ord = f.ord WHERE f.observation_id IS NOT NULL
    ), links AS (
      SELECT f.observation_id, l.*
      FROM fresh f
      JOIN jsonb_to_recordset(${jsonForPostgres(raw.links)}::jsonb) AS l (
        ord int, i int, probe_id text, url text, status int, redirects jsonb, head text, body text,
        body_bytes int, client_truncated boolean, stored_truncated boolean) ON l.ord = f.ord
      WHERE f.observation_id IS NOT NULL
    ), blobs AS (
      -- Only blobs a new observation links to (a replayed batch adds none); a blob another host or process
      -- stored first is left as it is (same bytes, same key). In key order: concurrent batches (the batcher
      -- keeps several in flight, several processes may share the database) inserting overlapping keys in
      -- different orders deadlock on the unique index (measured: 40P01 on the first 1,024-host lab scan).
      INSERT INTO raw_responses (sha256, encoding, size, data)
      SELECT decode(b.sha, 'base64'), b.encoding, b.size, substring(${blobBytes}::bytea FROM b.off + 1 FOR b.len)
      FROM jsonb_to_recordset(${JSON.stringify(blobs)}::jsonb) AS b (sha text, encoding text, size int, off int, len int)
      WHERE b.sha IN (SELECT head FROM links UNION SELECT body FROM links)
      ORDER BY 1
      ON CONFLICT (sha256) DO NOTHING
    ), linked AS (
      INSERT INTO observation_responses (observation_id, ord, probe_id, url, status, redirects, head_sha256, body_sha256,
                                         body_bytes, client_truncated, stored_truncated)
      SELECT observation_id, i, probe_id, url, status, redirects, decode(head, 'base64'), decode(body, 'base64'),
             body_bytes, client_truncated, stored_truncated
      FROM links
    )
    SELECT ord, observation_id FROM fresh WHERE observation_id IS NOT NULL`.execute(db);
  return r.rows.map((x) => ({ ord: x.ord, observationId: x.observation_id }));
}

/**
 * Assessment stage: one row per observation judged (several per observation over time; readers take the
 * latest). One statement, whatever the number of rows. The CVE arrays are stored once per distinct pair
 * (migration 0028): `setIds` are the rows' verdict sets when the caller took them before its transaction,
 * otherwise they are upserted on `db`.
 */
export async function writeAssessments(db: Executor, rows: readonly AssessmentRow[], setIds?: readonly number[]): Promise<void> {
  if (rows.length === 0) return;
  const sets = setIds ?? await verdictSetIds(db, rows);
  const input = rows.map((a, i) => ({
    observation_id: a.observationId, kb_revision: a.kbRevision, verdict_set_id: sets[i], notes: a.notes, fingerprint: a.fingerprint,
  }));
  await sql`
    INSERT INTO assessment_rows (observation_id, verdict_set_id, notes, kb_revision, fingerprint)
    SELECT observation_id, verdict_set_id, notes, kb_revision, fingerprint
    FROM jsonb_to_recordset(${jsonForPostgres(input)}::jsonb) AS t (
      observation_id bigint, verdict_set_id bigint, notes jsonb, kb_revision text, fingerprint jsonb)
    ORDER BY observation_id`.execute(db);
}

/** The verdicts of an attempt without a record (its set id is taken and not used: one lookup per batch). */
const NO_VERDICTS = { vulnerable: [], indeterminate: [] } as const;

/**
 * JSON text PostgreSQL accepts: jsonb refuses the escape \u0000 (text cannot hold NUL), and one hostile
 * string must not fail a whole batch, so NUL becomes U+FFFD. Only a real escape is replaced, not an
 * escaped backslash followed by "u0000".
 */
export function jsonForPostgres(value: unknown): string {
  const text = JSON.stringify(value);
  return text.includes('\\u0000') ? text.replace(/(?<!\\)((?:\\\\)*)\\u0000/g, '$1\\ufffd') : text;
}

interface RecordRow {
  readonly id: number;
  readonly ip: string;
  readonly port: number;
  readonly hostname: string | null;
  readonly tls: boolean;
  readonly product: string | null;
  readonly edition: string | null;
  readonly build: string | null;
  readonly build_precision: 'exact' | 'cu' | null;
  readonly cu: string | null;
  readonly su: string | null;
  readonly status: number | null;
  readonly evidence: readonly Evidence[];
  readonly notes: readonly string[];
  readonly scanned_at: Date;
  readonly vulnerable: readonly string[];
  readonly indeterminate: readonly string[];
}

async function* streamRecords(db: Kysely<DbSchema>, scanId: string): AsyncGenerator<ScanRecord> {
  const n = parseScanId(scanId);
  if (n === null) return;
  let after: { ip: string; port: number } | null = null;
  for (;;) {
    const cursor = after === null ? sql`TRUE` : sql`(o.ip, o.port) > (${after.ip}::inet, ${after.port}::int)`;
    const r: { rows: RecordRow[] } = await sql<RecordRow>`
      SELECT o.id, host(o.ip) AS ip, o.port, o.hostname, o.tls,
             -- a re-assessment that replayed the detectors says what the service is (a.fingerprint)
             CASE WHEN a.fingerprint IS NULL THEN o.product ELSE a.fingerprint->>'product' END AS product,
             CASE WHEN a.fingerprint IS NULL THEN o.edition ELSE a.fingerprint->>'edition' END AS edition,
             CASE WHEN a.fingerprint IS NULL THEN o.build ELSE a.fingerprint->>'build' END AS build,
             CASE WHEN a.fingerprint IS NULL THEN o.build_precision ELSE a.fingerprint->>'buildPrecision' END AS build_precision,
             CASE WHEN a.fingerprint IS NULL THEN o.cu ELSE a.fingerprint->>'cu' END AS cu,
             CASE WHEN a.fingerprint IS NULL THEN o.su ELSE a.fingerprint->>'su' END AS su,
             o.status, o.evidence, o.scanned_at,
             coalesce(a.vulnerable, '{}') AS vulnerable, coalesce(a.indeterminate, '{}') AS indeterminate,
             coalesce(a.notes, '[]'::jsonb) AS notes
      FROM observations o
      LEFT JOIN LATERAL (
        SELECT vulnerable, indeterminate, notes, fingerprint FROM assessments
        WHERE observation_id = o.id ORDER BY id DESC LIMIT 1) a ON TRUE
      WHERE o.scan_id = ${n}::bigint AND ${cursor}
      ORDER BY o.ip, o.port
      LIMIT ${PAGE}`.execute(db);
    for (const row of r.rows) yield toRecord(row);
    const last = r.rows[r.rows.length - 1];
    if (r.rows.length < PAGE || last === undefined) return;
    after = { ip: last.ip, port: last.port };
  }
}

function toRecord(row: RecordRow): ScanRecord {
  return {
    ip: row.ip,
    port: row.port,
    hostname: row.hostname,
    tls: row.tls,
    product: row.product,
    edition: row.edition,
    build: row.build,
    buildPrecision: row.build_precision,
    cu: row.cu,
    su: row.su,
    vulnerable: row.vulnerable,
    indeterminate: row.indeterminate,
    evidence: row.evidence,
    scannedAt: row.scanned_at.toISOString(),
    status: row.status,
    notes: row.notes,
  };
}
