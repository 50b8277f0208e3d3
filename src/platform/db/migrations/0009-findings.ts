/**
 * Migration 0009: findings and their history (issue 9 §1; rules in src/findings/, fold in finding-store.ts).
 *
 * - `findings`: one row per (ip, port, CVE) incarnation. `current` marks the one the fold updates; a finding
 *   that reappears more than 90 days after it closed is a NEW row and the old one stops being current, so the
 *   unique key is partial (`WHERE current`). A host-level finding (compromised evidence from a feed) has port
 *   NULL: the key uses coalesce(port, -1), as the feed tables do.
 *   `present` = the latest evidence still shows the CVE (an expired false-positive / accepted-risk comes back
 *   only then). `last_at` = time of the latest evidence applied: older evidence folded later (a feed report of
 *   last week imported after today's scan) never moves the state backwards.
 * - `finding_events`: append-only (opened, verified, notified, acknowledged, closed, reopened, changed,
 *   owner-changed), with the observation that caused it, when, who, and a small detail object. The patch
 *   curve is computed from here.
 * - `findings_fold_state`: one row; the last assessment, attempt and feed row ids folded (the fold is
 *   incremental: each run reads only what is newer).
 * `findings` is stored with fillfactor 70: every rescan updates each seen finding's last_seen, and free room on
 * the page lets PostgreSQL do that without touching the indexes (HOT updates).
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE findings (
      id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      ip                    inet NOT NULL,
      port                  integer CHECK (port BETWEEN 0 AND 65535),
      cve                   text NOT NULL,
      product               text,
      state                 text NOT NULL CHECK (state IN ('open', 'closed')),
      close_reason          text CHECK (close_reason IN ('patched', 'service-gone', 'left-scope', 'false-positive', 'accepted-risk')),
      closed_at             timestamptz,
      -- false-positive / accepted-risk: back to open after this time when the CVE is still seen
      closed_until          timestamptz,
      note                  text,
      verdict               text NOT NULL CHECK (verdict IN ('vulnerable', 'indeterminate', 'compromised')),
      present               boolean NOT NULL DEFAULT true,
      org_id                bigint,
      first_seen            timestamptz NOT NULL,
      last_seen             timestamptz NOT NULL,
      last_at               timestamptz NOT NULL,
      first_observation_id  bigint,
      last_observation_id   bigint,
      current               boolean NOT NULL DEFAULT true,
      CHECK ((state = 'closed') = (close_reason IS NOT NULL))
    ) WITH (fillfactor = 70)`.execute(db);
  await sql`CREATE UNIQUE INDEX findings_current_key ON findings (ip, (coalesce(port, -1)), cve) WHERE current`.execute(db);
  await sql`CREATE INDEX findings_org_state ON findings (org_id, state) WHERE current`.execute(db);

  await sql`
    CREATE TABLE finding_events (
      id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      -- no foreign key: only the finding store writes events, for findings it has just read or written, and a
      -- per-row RI check was a large part of folding a million findings (findings are never deleted)
      finding_id      bigint NOT NULL,
      kind            text NOT NULL CHECK (kind IN ('opened', 'verified', 'notified', 'acknowledged', 'closed', 'reopened',
                                                    'changed', 'owner-changed')),
      at              timestamptz NOT NULL,
      observation_id  bigint,
      who             text NOT NULL,
      detail          jsonb
    )`.execute(db);
  await sql`CREATE INDEX finding_events_finding ON finding_events (finding_id, id)`.execute(db);
  // Append-only: an UPDATE of an event is a bug (and refused).
  await sql`
    CREATE OR REPLACE FUNCTION tocsin_finding_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'finding_events is append-only';
    END $$`.execute(db);
  await sql`
    CREATE TRIGGER finding_events_no_update BEFORE UPDATE ON finding_events
      FOR EACH STATEMENT EXECUTE FUNCTION tocsin_finding_events_append_only()`.execute(db);

  await sql`
    CREATE TABLE findings_fold_state (
      id                   integer PRIMARY KEY CHECK (id = 1),
      last_assessment_id   bigint NOT NULL DEFAULT 0,
      last_attempt_id      bigint NOT NULL DEFAULT 0,
      last_feed_row_id     bigint NOT NULL DEFAULT 0,
      folded_at            timestamptz
    )`.execute(db);
  await sql`INSERT INTO findings_fold_state (id) VALUES (1)`.execute(db);
}
