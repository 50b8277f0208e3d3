/**
 * Migration 0019: distributed scan workers (issue 11 §1-2).
 *
 * - `scan_workers`: one row per live `tocsin worker` process (any host), refreshed by its heartbeat. A row whose
 *   heartbeat is older than the lease (TOCSIN_WORKER_LEASE_SECONDS) is a dead worker: another worker unlocks
 *   its queue jobs (`queue_worker_ids`: the job engine's worker ids of that process) and requeues its blocks.
 * - `scan_blocks`: a distributed scan's targets cut into blocks on /24 (IPv4) and /64 (IPv6) boundaries, one
 *   row per block, (scan_id, block_no) unique. `state` queued → running → done (or cancelled); `attempts`
 *   counts leases taken (a retried block has attempts > 1); `leased_by` is the scan_workers id running it.
 *   `first_ip`/`last_ip` span the block (one address family per block) so a retried block reads only its own
 *   stored attempts.
 * - `scan_rate_buckets`: the scan's overall --rate shared by every worker: a GCRA bucket (`tat`, the
 *   theoretical arrival time of the next free slot) that workers reserve slots from in small batches with one
 *   UPDATE ... RETURNING.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE scan_workers (
      id                text PRIMARY KEY,
      host              text NOT NULL,
      pid               integer NOT NULL,
      concurrency       integer NOT NULL CHECK (concurrency > 0),
      queue_worker_ids  text[] NOT NULL DEFAULT '{}',
      started_at        timestamptz NOT NULL DEFAULT now(),
      heartbeat_at      timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`
    CREATE TABLE scan_blocks (
      scan_id      bigint NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
      block_no     integer NOT NULL CHECK (block_no >= 0),
      targets      jsonb NOT NULL,
      hosts        integer NOT NULL CHECK (hosts >= 0),
      first_ip     inet NOT NULL,
      last_ip      inet NOT NULL,
      state        text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'cancelled')),
      attempts     integer NOT NULL DEFAULT 0,
      leased_by    text,
      leased_at    timestamptz,
      finished_at  timestamptz,
      PRIMARY KEY (scan_id, block_no)
    )`.execute(db);
  await sql`CREATE INDEX scan_blocks_open ON scan_blocks (scan_id) WHERE state IN ('queued', 'running')`.execute(db);
  await sql`CREATE INDEX scan_blocks_leased_by ON scan_blocks (leased_by) WHERE state = 'running'`.execute(db);
  await sql`
    CREATE TABLE scan_rate_buckets (
      scan_id     bigint PRIMARY KEY REFERENCES scans (id) ON DELETE CASCADE,
      per_second  double precision NOT NULL CHECK (per_second > 0),
      burst       integer NOT NULL CHECK (burst >= 1),
      tat         timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
}
