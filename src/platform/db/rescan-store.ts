/**
 * Verification rescans and the organisation portal's reads (migration 0018; issue 10 §4). Queries only: who may
 * ask for what, the limits and what a result means are decided in src/services/rescan-requests.ts and
 * src/services/portal.ts.
 *
 * Every read here that returns an organisation's data takes the organisation's id and filters by it IN THE QUERY
 * (findings.org_id, campaign_messages.org_id, rescan_requests.org_id): the portal never filters after reading.
 *
 * Concurrency:
 * - a request is queued under a per-organisation advisory lock (transaction-scoped), so the pending check and the
 *   per-day count cannot race with another request of the same organisation; the unique partial index of 0018
 *   (one pending row per organisation) holds even without the lock;
 * - a runner claims the oldest queued row with FOR UPDATE SKIP LOCKED: several servers never take the same row.
 */
import { sql, type Kysely } from 'kysely';
import type { DbSchema, Json } from './schema.js';

type Db = Kysely<DbSchema>;

/** Arbitrary constant naming "rescan request of an organisation" among two-key advisory locks. */
const REQUEST_LOCK_CLASS = 730_518;

export type RescanStatus = 'queued' | 'running' | 'done' | 'failed';

export interface RescanTarget {
  readonly ip: string;
  readonly port: number;
}

export interface RescanRow {
  readonly id: number;
  readonly orgId: number;
  readonly requestedBy: string;
  readonly targets: readonly RescanTarget[];
  readonly status: RescanStatus;
  readonly scanId: number | null;
  readonly scanIds: readonly number[];
  readonly requestedAt: Date;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
  readonly closed: number | null;
  readonly stillOpen: number | null;
  readonly error: string | null;
}

interface RawRescan {
  id: number; org_id: number; requested_by_email: string; targets: Json; status: RescanStatus; scan_id: number | null;
  scan_ids: number[] | null; requested_at: Date; started_at: Date | null; finished_at: Date | null; closed: number | null;
  still_open: number | null; error: string | null;
}

function targetsOf(j: Json): RescanTarget[] {
  if (!Array.isArray(j)) return [];
  const out: RescanTarget[] = [];
  for (const t of j) {
    if (typeof t === 'object' && t !== null && !Array.isArray(t) && typeof t['ip'] === 'string' && typeof t['port'] === 'number') out.push({ ip: t['ip'], port: t['port'] });
  }
  return out;
}

function toRow(r: RawRescan): RescanRow {
  return {
    id: Number(r.id), orgId: Number(r.org_id), requestedBy: r.requested_by_email, targets: targetsOf(r.targets), status: r.status,
    scanId: r.scan_id === null ? null : Number(r.scan_id), scanIds: (r.scan_ids ?? []).map(Number), requestedAt: r.requested_at,
    startedAt: r.started_at, finishedAt: r.finished_at, closed: r.closed, stillOpen: r.still_open, error: r.error,
  };
}

const COLUMNS = sql`id, org_id, requested_by_email, targets, status, scan_id, scan_ids, requested_at, started_at, finished_at, closed, still_open, error`;

export type QueueAnswer =
  | { readonly kind: 'queued'; readonly row: RescanRow }
  /** Another request of the organisation is queued or running. */
  | { readonly kind: 'pending'; readonly pendingId: number }
  /** `maxPerDay` requests in the last 24 hours; the oldest of them is `oldest`. */
  | { readonly kind: 'daily'; readonly oldest: Date };

/** Queues a request unless one is pending or the organisation made `maxPerDay` in the last 24 hours. */
export async function queueRescan(db: Db, r: { orgId: number; userId: number; email: string; targets: readonly RescanTarget[]; maxPerDay: number }): Promise<QueueAnswer> {
  try {
    return await db.transaction().execute(async (trx): Promise<QueueAnswer> => {
      await sql`SELECT pg_advisory_xact_lock(${REQUEST_LOCK_CLASS}, ${r.orgId}::int)`.execute(trx);
      const pending = (await sql<{ id: number }>`
        SELECT id FROM rescan_requests WHERE org_id = ${r.orgId} AND status IN ('queued', 'running') LIMIT 1`.execute(trx)).rows[0];
      if (pending !== undefined) return { kind: 'pending', pendingId: Number(pending.id) };
      const day = (await sql<{ n: number; oldest: Date | null }>`
        SELECT count(*)::int AS n, min(requested_at) AS oldest FROM rescan_requests
        WHERE org_id = ${r.orgId} AND requested_at > now() - interval '24 hours'`.execute(trx)).rows[0];
      if (day !== undefined && day.n >= r.maxPerDay && day.oldest !== null) return { kind: 'daily', oldest: day.oldest };
      const row = (await sql<RawRescan>`
        INSERT INTO rescan_requests (org_id, requested_by, requested_by_email, targets)
        VALUES (${r.orgId}, ${r.userId}, ${r.email}, ${JSON.stringify(r.targets)}::jsonb)
        RETURNING ${COLUMNS}`.execute(trx)).rows[0];
      if (row === undefined) throw new Error('INSERT ... RETURNING gave no row');
      return { kind: 'queued', row: toRow(row) };
    });
  } catch (e) {
    // The unique partial index: a request of the same organisation got in first (another server without the lock).
    if ((e as { code?: unknown }).code === '23505') return { kind: 'pending', pendingId: 0 };
    throw e;
  }
}

/**
 * The organisation's requests, newest first; `beforeId` continues after that request (keyset pages of a download:
 * the key's timestamp is read in the query, so microseconds a JavaScript Date would lose do not matter).
 */
export async function rescansOfOrg(db: Db, orgId: number, limit = 100, beforeId?: number): Promise<RescanRow[]> {
  const after = beforeId === undefined ? sql`` : sql`AND (requested_at, id) < (SELECT b.requested_at, b.id FROM rescan_requests b WHERE b.id = ${beforeId})`;
  const rows = (await sql<RawRescan>`
    SELECT ${COLUMNS} FROM rescan_requests WHERE org_id = ${orgId} ${after} ORDER BY requested_at DESC, id DESC LIMIT ${limit}`.execute(db)).rows;
  return rows.map(toRow);
}

export async function rescanById(db: Db, id: number): Promise<RescanRow | null> {
  const r = (await sql<RawRescan>`SELECT ${COLUMNS} FROM rescan_requests WHERE id = ${id}`.execute(db)).rows[0];
  return r === undefined ? null : toRow(r);
}

/**
 * Takes the oldest queued request for this runner (status running). A request left running longer than
 * `staleAfterMinutes` (its server died) is marked failed first, so it no longer blocks its organisation.
 */
export async function claimNextRescan(db: Db, runner: string, staleAfterMinutes: number): Promise<RescanRow | null> {
  await sql`
    UPDATE rescan_requests SET status = 'failed', finished_at = now(), error = 'the server running it stopped; ask again'
    WHERE status = 'running' AND started_at < now() - make_interval(mins => ${staleAfterMinutes})`.execute(db);
  const r = (await sql<RawRescan>`
    UPDATE rescan_requests SET status = 'running', started_at = now(), runner = ${runner}
    WHERE id = (SELECT id FROM rescan_requests WHERE status = 'queued' ORDER BY requested_at, id FOR UPDATE SKIP LOCKED LIMIT 1)
    RETURNING ${COLUMNS}`.execute(db)).rows[0];
  return r === undefined ? null : toRow(r);
}

/** Puts a running request back in the queue (its runner was stopped before the end: another one finishes it). */
export async function requeueRescan(db: Db, id: number): Promise<void> {
  await sql`UPDATE rescan_requests SET status = 'queued', started_at = NULL, runner = NULL WHERE id = ${id} AND status = 'running'`.execute(db);
}

export async function finishRescan(db: Db, id: number, f: { status: 'done' | 'failed'; scanIds: readonly number[]; closed: number | null; stillOpen: number | null; error: string | null }): Promise<void> {
  await sql`
    UPDATE rescan_requests SET status = ${f.status}, finished_at = now(), scan_ids = ${[...f.scanIds]}::int8[], scan_id = ${f.scanIds[0] ?? null},
           closed = ${f.closed}, still_open = ${f.stillOpen}, error = ${f.error}
    WHERE id = ${id}`.execute(db);
}

/**
 * Among the targets' current findings: how many were closed at or after `since` (the rescan's result closed them)
 * and how many are still open.
 */
export async function rescanOutcome(db: Db, targets: readonly RescanTarget[], since: Date): Promise<{ closed: number; stillOpen: number }> {
  if (targets.length === 0) return { closed: 0, stillOpen: 0 };
  const r = (await sql<{ closed: number; open: number }>`
    SELECT count(*) FILTER (WHERE f.state = 'closed' AND f.closed_at >= ${since})::int AS closed,
           count(*) FILTER (WHERE f.state = 'open')::int AS open
    FROM findings f
    JOIN unnest(${targets.map((t) => t.ip)}::inet[], ${targets.map((t) => t.port)}::int[]) AS t(ip, port) ON f.ip = t.ip AND f.port = t.port
    WHERE f.current`.execute(db)).rows[0];
  return { closed: r?.closed ?? 0, stillOpen: r?.open ?? 0 };
}

/**
 * How each port was last scanned ("4443/tls"), from the newest scan that had it in its plan: a rescan speaks to the
 * service the way the scan that found it did. Ports never scanned by us (feed-only) are missing from the map.
 */
export async function lastPortSpecs(db: Db, ports: readonly number[]): Promise<Map<number, string>> {
  if (ports.length === 0) return new Map();
  const rows = (await sql<{ port: number; spec: string | null }>`
    SELECT DISTINCT ON (p.port) p.port, s.options->>'ports' AS spec
    FROM unnest(${[...ports]}::int[]) AS p(port)
    JOIN scans s ON p.port = ANY(s.ports)
    ORDER BY p.port, s.id DESC`.execute(db)).rows;
  return new Map(rows.filter((r) => r.spec !== null).map((r) => [r.port, r.spec ?? '']));
}

// --- The portal's reads (always by organisation id).

export interface OrgFindingRow {
  readonly id: number;
  readonly ip: string;
  readonly port: number | null;
  readonly cve: string;
  readonly state: 'open' | 'closed';
  readonly closeReason: string | null;
  readonly closedAt: Date | null;
  readonly verdict: string;
  readonly firstSeen: Date;
  readonly lastSeen: Date;
}

/** The organisation's current findings (optionally of one address, or of some: a download's page), by address. */
export async function findingsOfOrg(db: Db, orgId: number, ip?: string | readonly string[]): Promise<OrgFindingRow[]> {
  const only = ip === undefined ? sql``
    : typeof ip === 'string' ? sql`AND ip = ${ip}::inet`
      : ip.length === 0 ? sql`AND FALSE` : sql`AND ip IN (${sql.join(ip.map((a) => sql`${a}::inet`))})`;
  const rows = (await sql<{ id: number; ip: string; port: number | null; cve: string; state: 'open' | 'closed'; close_reason: string | null; closed_at: Date | null; verdict: string; first_seen: Date; last_seen: Date }>`
    SELECT id, host(ip) AS ip, port, cve, state, close_reason, closed_at, verdict, first_seen, last_seen
    FROM findings WHERE current AND org_id = ${orgId} ${only}
    ORDER BY ip, port NULLS FIRST, cve LIMIT 20000`.execute(db)).rows;
  return rows.map((r) => ({
    id: Number(r.id), ip: r.ip, port: r.port, cve: r.cve, state: r.state, closeReason: r.close_reason, closedAt: r.closed_at, verdict: r.verdict,
    firstSeen: r.first_seen, lastSeen: r.last_seen,
  }));
}

/** The evidence of the newest observation of each (ip, port) (hostile text, as the detectors stored it). */
export async function latestEvidence(db: Db, keys: readonly RescanTarget[]): Promise<Map<string, Json>> {
  if (keys.length === 0) return new Map();
  const rows = (await sql<{ ip: string; port: number; evidence: Json; scanned_at: Date }>`
    SELECT DISTINCT ON (o.ip, o.port) host(o.ip) AS ip, o.port, o.evidence, o.scanned_at
    FROM unnest(${keys.map((k) => k.ip)}::inet[], ${keys.map((k) => k.port)}::int[]) AS k(ip, port)
    JOIN observations o ON o.ip = k.ip AND o.port = k.port
    ORDER BY o.ip, o.port, o.scanned_at DESC, o.id DESC`.execute(db)).rows;
  return new Map(rows.map((r) => [`${r.ip}|${r.port}`, r.evidence]));
}

export interface OrgWarningRow {
  readonly id: number;
  readonly campaignId: number;
  readonly campaign: string;
  readonly ticket: string;
  readonly state: string;
  readonly step: number;
  readonly sentAt: Date | null;
  readonly acknowledgedAt: Date | null;
  readonly bounces: number;
  readonly exposures: Json;
}

/** Campaign messages to the organisation (its warnings), newest campaign first; suppressed and cancelled ones are not warnings. */
export async function warningsOfOrg(
  db: Db, orgId: number, only?: { messageId?: number; campaignId?: number },
  page?: { readonly after: { readonly campaignId: number; readonly id: number } | null; readonly limit: number },
): Promise<OrgWarningRow[]> {
  const after = page?.after === null || page?.after === undefined ? sql`` : sql`AND (m.campaign_id, m.id) < (${page.after.campaignId}::bigint, ${page.after.id}::bigint)`;
  const rows = (await sql<{ id: number; campaign_id: number; name: string; ticket: string; state: string; step: number; sent_at: Date | null; acknowledged_at: Date | null; bounces: number; exposures: Json }>`
    SELECT m.id, m.campaign_id, c.name, m.ticket, m.state, m.step, m.sent_at, m.acknowledged_at, m.exposures,
           (SELECT count(*)::int FROM campaign_inbound i WHERE i.message_id = m.id AND i.kind = 'bounce') AS bounces
    FROM campaign_messages m JOIN campaigns c ON c.id = m.campaign_id
    WHERE m.org_id = ${orgId} AND m.state NOT IN ('suppressed', 'cancelled')
      ${only?.messageId === undefined ? sql`` : sql`AND m.id = ${only.messageId}`}
      ${only?.campaignId === undefined ? sql`` : sql`AND m.campaign_id = ${only.campaignId}`}
      ${after}
    ORDER BY m.campaign_id DESC, m.id DESC LIMIT ${page?.limit ?? 1000}`.execute(db)).rows;
  return rows.map((r) => ({
    id: Number(r.id), campaignId: Number(r.campaign_id), campaign: r.name, ticket: r.ticket, state: r.state, step: r.step, sentAt: r.sent_at,
    acknowledgedAt: r.acknowledged_at, bounces: r.bounces, exposures: r.exposures,
  }));
}
