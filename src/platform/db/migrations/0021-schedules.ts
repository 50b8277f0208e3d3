/**
 * Migration 0021: schedules (issue 11 §4) and what retention needs (§5).
 *
 * - `schedules`: a named recurring rescan: its cadence policy (jsonb, src/schedules/policy.ts), its scope
 *   (`{"kind":"constituency"}`, `{"kind":"org","org":"NAME"}`, `{"kind":"cidrs","cidrs":[...]}`), enabled, the last
 *   tick and when something is next due; a lease (owner, until) so one tick runs per schedule at a time, whichever
 *   process (daemon, worker) runs it.
 * - `schedule_runs`: one row per tick that had something to do: its clock, the targets it chose, the scan it started,
 *   the stage it reached (`planned` → `scanned` → `folded` → `done`; a killed tick is taken up at its stage by the
 *   next one), what it did, and the follow-up campaigns it created.
 * - `schedule_targets`: when this schedule last scanned each target (address or CIDR), at the tick's clock: what the
 *   cadence is measured from.
 * - indexes for `tocsin db prune`: observations and attempts by time, finding references by observation.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE schedules (
      id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      name         text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
      policy       jsonb NOT NULL,
      scope        jsonb NOT NULL,
      enabled      boolean NOT NULL DEFAULT true,
      created_at   timestamptz NOT NULL DEFAULT now(),
      created_by   text NOT NULL,
      last_tick    timestamptz,
      next_due     timestamptz,
      lease_owner  text,
      lease_until  timestamptz
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX schedules_name ON schedules (lower(name))`.execute(db);
  await sql`
    CREATE TABLE schedule_runs (
      id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      schedule_id  bigint NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
      tick_at      timestamptz NOT NULL,
      stage        text NOT NULL CHECK (stage IN ('planned', 'scanned', 'folded', 'done', 'failed')),
      targets      jsonb NOT NULL,
      served       jsonb NOT NULL DEFAULT '[]',
      scan_id      bigint,
      outcome      jsonb NOT NULL DEFAULT '{}',
      follow_up_campaigns bigint[] NOT NULL DEFAULT '{}',
      error        text,
      started_at   timestamptz NOT NULL DEFAULT now(),
      finished_at  timestamptz
    )`.execute(db);
  await sql`CREATE INDEX schedule_runs_schedule ON schedule_runs (schedule_id, id DESC)`.execute(db);
  await sql`CREATE UNIQUE INDEX schedule_runs_open ON schedule_runs (schedule_id) WHERE stage NOT IN ('done', 'failed')`.execute(db);
  await sql`
    CREATE TABLE schedule_targets (
      schedule_id  bigint NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
      target       text NOT NULL,
      last_at      timestamptz NOT NULL,
      last_run_id  bigint NOT NULL,
      PRIMARY KEY (schedule_id, target)
    )`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS observations_scanned_at ON observations (scanned_at)`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS scan_attempts_attempted_at ON scan_attempts (attempted_at)`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS findings_last_observation ON findings (last_observation_id)`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS findings_first_observation ON findings (first_observation_id)`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS finding_events_observation ON finding_events (observation_id) WHERE observation_id IS NOT NULL`.execute(db);
}
