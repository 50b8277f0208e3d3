/**
 * Stored observations read back for re-assessment (`tocsin reassess`, src/services/reassess.ts): each with
 * its latest assessment and its probe responses rebuilt from `raw_responses` exactly as the probe client
 * returned them (up to the storage cap), so its detectors and fingerprint can be replayed offline.
 *
 * Keyset pagination on the observation id (memory stays flat whatever the number of observations); blobs
 * are fetched once per page by hash and kept in a small cache across pages, because the same body (an OWA
 * logon page, an IIS 404 page) backs thousands of observations.
 */
import { sql, type Kysely } from 'kysely';
import type { Evidence } from '../../core/contracts/evidence.js';
import type { ProbeResponse } from '../../core/contracts/probe.js';
import type { AssessedFingerprint, DbSchema } from './schema.js';
import { rebuildResponse, unpackBlob, type ResponseLink } from './raw-responses.js';

export interface StoredAssessment {
  readonly id: number;
  readonly kbRevision: string | null;
  readonly vulnerable: readonly string[];
  readonly indeterminate: readonly string[];
  readonly notes: readonly string[];
}

export interface StoredObservation {
  readonly id: number;
  readonly scanId: number | null;
  readonly ip: string;
  readonly port: number;
  readonly hostname: string | null;
  readonly tls: boolean;
  /** HTTP status of the main probe. */
  readonly status: number | null;
  readonly scannedAt: string;
  /** What the service is taken to be now: the latest assessment's fingerprint, else the observation's own. */
  readonly current: AssessedFingerprint;
  readonly evidence: readonly Evidence[];
  /** The latest assessment, or null when none is stored. */
  readonly latest: StoredAssessment | null;
  /** The responses in the order they were answered (the first is the main probe); null when none are stored. */
  readonly responses: readonly ProbeResponse[] | null;
  /** True when storage kept only the first bytes of one of the responses (a replay sees them cut). */
  readonly storedTruncated: boolean;
}

export interface ObservationQuery {
  /** Only this scan's observations; null/undefined = every stored observation. */
  readonly scanId?: number | null;
  /** Observations per page (default 500). */
  readonly pageSize?: number;
}

interface ObsRow {
  readonly id: number;
  readonly scan_id: number | null;
  readonly ip: string;
  readonly port: number;
  readonly hostname: string | null;
  readonly tls: boolean;
  readonly status: number | null;
  readonly scanned_at: Date;
  readonly product: string | null;
  readonly edition: string | null;
  readonly build: string | null;
  readonly build_precision: 'exact' | 'cu' | null;
  readonly cu: string | null;
  readonly su: string | null;
  readonly evidence: readonly Evidence[];
  readonly a_id: number | null;
  readonly kb_revision: string | null;
  readonly vulnerable: readonly string[] | null;
  readonly indeterminate: readonly string[] | null;
  readonly notes: readonly string[] | null;
  readonly fingerprint: AssessedFingerprint | null;
}

interface LinkRow {
  readonly observation_id: number;
  readonly ord: number;
  readonly probe_id: string;
  readonly url: string;
  readonly status: number;
  readonly redirects: readonly string[];
  readonly head_sha256: Buffer;
  readonly body_sha256: Buffer;
  readonly body_bytes: number;
  readonly client_truncated: boolean;
  readonly stored_truncated: boolean;
}

/** Decoded blobs kept across pages (by hash, base64). Bounded: cleared when full. */
const BLOB_CACHE = 4096;

export async function* storedObservations(db: Kysely<DbSchema>, q: ObservationQuery = {}): AsyncGenerator<StoredObservation> {
  const page = Math.max(1, Math.floor(q.pageSize ?? 500));
  const scan = q.scanId === undefined || q.scanId === null ? sql`TRUE` : sql`o.scan_id = ${q.scanId}::bigint`;
  const blobs = new Map<string, Buffer>();
  let after = 0;
  for (;;) {
    const r = await sql<ObsRow>`
      SELECT o.id, o.scan_id, host(o.ip) AS ip, o.port, o.hostname, o.tls, o.status, o.scanned_at, o.product, o.edition,
             o.build, o.build_precision, o.cu, o.su, o.evidence,
             a.id AS a_id, a.kb_revision, a.vulnerable, a.indeterminate, a.notes, a.fingerprint
      FROM observations o
      LEFT JOIN LATERAL (
        SELECT id, kb_revision, vulnerable, indeterminate, notes, fingerprint FROM assessments
        WHERE observation_id = o.id ORDER BY id DESC LIMIT 1) a ON TRUE
      WHERE o.id > ${after}::bigint AND ${scan}
      ORDER BY o.id
      LIMIT ${page}`.execute(db);
    const rows = r.rows;
    if (rows.length === 0) return;
    const ids = rows.map((x) => x.id);
    const links = (await sql<LinkRow>`
      SELECT observation_id, ord, probe_id, url, status, redirects, head_sha256, body_sha256, body_bytes,
             client_truncated, stored_truncated
      FROM observation_responses WHERE observation_id = ANY(${ids}::bigint[])
      ORDER BY observation_id, ord`.execute(db)).rows;
    const needed = new Map<string, Buffer>();
    for (const l of links) for (const h of [l.head_sha256, l.body_sha256]) needed.set(h.toString('base64'), h);
    let missing = [...needed].filter(([k]) => !blobs.has(k));
    if (blobs.size + missing.length > BLOB_CACHE) {
      blobs.clear();
      missing = [...needed];
    }
    if (missing.length > 0) {
      const got = (await sql<{ sha256: Buffer; encoding: string; data: Buffer }>`
        SELECT sha256, encoding, data FROM raw_responses WHERE sha256 = ANY(${missing.map(([, h]) => h)}::bytea[])`.execute(db)).rows;
      for (const b of got) blobs.set(b.sha256.toString('base64'), unpackBlob(b.sha256, b.encoding, b.data));
    }
    const byObs = new Map<number, LinkRow[]>();
    for (const l of links) {
      const list = byObs.get(l.observation_id) ?? [];
      list.push(l);
      byObs.set(l.observation_id, list);
    }
    for (const row of rows) yield toObservation(row, byObs.get(row.id) ?? null, blobs);
    after = rows[rows.length - 1]?.id ?? after;
    if (rows.length < page) return;
  }
}

function toObservation(row: ObsRow, links: readonly LinkRow[] | null, blobs: ReadonlyMap<string, Buffer>): StoredObservation {
  const own: AssessedFingerprint = {
    product: row.product, edition: row.edition, build: row.build, buildPrecision: row.build_precision, cu: row.cu, su: row.su,
  };
  let responses: ProbeResponse[] | null = null;
  let storedTruncated = false;
  if (links !== null) {
    responses = links.map((l) => {
      const link: ResponseLink = {
        probeId: l.probe_id, url: l.url, status: l.status, redirects: l.redirects,
        head: l.head_sha256.toString('base64'), body: l.body_sha256.toString('base64'),
        bodyBytes: l.body_bytes, clientTruncated: l.client_truncated, storedTruncated: l.stored_truncated,
      };
      const head = blobs.get(link.head);
      const body = blobs.get(link.body);
      // The foreign keys make this a bug or a damaged database, not a state to work around.
      if (head === undefined || body === undefined) throw new Error(`observation ${row.id}: raw response ${link.probeId} is missing`);
      if (l.stored_truncated) storedTruncated = true;
      return rebuildResponse(link, head, body);
    });
  }
  return {
    id: row.id,
    scanId: row.scan_id,
    ip: row.ip,
    port: row.port,
    hostname: row.hostname,
    tls: row.tls,
    status: row.status,
    scannedAt: row.scanned_at.toISOString(),
    current: row.fingerprint ?? own,
    evidence: row.evidence,
    latest: row.a_id === null ? null : {
      id: row.a_id,
      kbRevision: row.kb_revision,
      vulnerable: row.vulnerable ?? [],
      indeterminate: row.indeterminate ?? [],
      notes: row.notes ?? [],
    },
    responses,
    storedTruncated,
  };
}
