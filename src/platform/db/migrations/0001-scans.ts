/**
 * Migration 0001: scans, attempts, observations, assessments.
 *
 * How the later pipeline fits (docs/ARCHITECTURE.md has the full model):
 * - observations are the one place raw facts land, from a scan (attempt_id, scan_id set) or later from a
 *   feed import (source = 'feed:<name>', attempt_id and scan_id null, the raw line in facts). Nothing
 *   downstream reads scan_attempts except resume and the report's "hosts scanned".
 * - assessments are the verdicts for one observation (knowledge-base output, no I/O): the vulnerable and
 *   indeterminate CVE ids as arrays; every other CVE of the knowledge base is not-vulnerable for that
 *   build (the ScanRecord contract). Per-CVE questions use `cve = ANY(vulnerable)` (GIN-indexable later).
 * - findings (next migration, with the lifecycle): one row per (ip, port, cve) with status, opened_at,
 *   closed_at, close_reason, and first/last observation ids referencing observations(id). They are
 *   derived from the latest assessment of each new observation; an inconclusive attempt never closes one, hence ip/port/scanned_at are
 *   copied onto observations so "latest observation per ip:port" needs no join (index added then).
 * - organisations, networks (cidr), asns, domains, contacts: attribution joins observations.ip with
 *   `inet <<= cidr` (GiST index) and observations.tls_cert->'sans' with domains.
 * - notifications/outbox and incidents reference findings and organisations, not scans.
 * Ids are bigint identities (short, typeable in `--scan 12`); int8 is read back as a JS number.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE scans (
      id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      targets      jsonb NOT NULL,
      ports        integer[] NOT NULL,
      options      jsonb NOT NULL DEFAULT '{}'::jsonb,
      status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'finished', 'failed')),
      started_at   timestamptz NOT NULL DEFAULT now(),
      finished_at  timestamptz
    )`.execute(db);

  await sql`
    CREATE TABLE scan_attempts (
      id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      scan_id       bigint NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
      ip            inet NOT NULL,
      port          integer NOT NULL CHECK (port BETWEEN 0 AND 65535),
      hostname      text,
      outcome       text NOT NULL CHECK (outcome IN ('answered', 'refused', 'timeout', 'tls-error', 'reset',
                                                     'protocol-error', 'unreachable', 'excluded')),
      detail        text,
      attempted_at  timestamptz NOT NULL,
      UNIQUE (scan_id, ip, port)
    )`.execute(db);

  await sql`
    CREATE TABLE observations (
      id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      source              text NOT NULL DEFAULT 'scan',
      attempt_id          bigint UNIQUE REFERENCES scan_attempts (id) ON DELETE CASCADE,
      scan_id             bigint REFERENCES scans (id) ON DELETE CASCADE,
      ip                  inet NOT NULL,
      port                integer NOT NULL CHECK (port BETWEEN 0 AND 65535),
      hostname            text,
      tls                 boolean NOT NULL,
      product             text,
      edition             text,
      build               text,
      build_precision     text CHECK (build_precision IN ('exact', 'cu')),
      cu                  text,
      su                  text,
      status              integer,
      facts               jsonb NOT NULL DEFAULT '[]'::jsonb,
      evidence            jsonb NOT NULL DEFAULT '[]'::jsonb,
      detector_revisions  jsonb NOT NULL DEFAULT '{}'::jsonb,
      tls_cert            jsonb,
      scanned_at          timestamptz NOT NULL
    )`.execute(db);
  // Few indexes on purpose: every one costs on each stored attempt (target >= 5k attempts/s). The
  // findings work adds (ip, port, scanned_at DESC) when it needs "latest observation per ip:port" fast.
  await sql`CREATE INDEX observations_scan_ip_port ON observations (scan_id, ip, port)`.execute(db);

  // One assessment = the knowledge base applied to one observation: the CVE ids found vulnerable and
  // indeterminate (every other CVE of that knowledge base is not-vulnerable). Arrays, not a row per CVE:
  // an old build is vulnerable to ~90 CVEs, and a row per CVE made storing a scan ~25x slower (measured
  // 212 attempts/s) and the report a join over millions of rows. Re-assessing stored observations with a
  // newer knowledge base (no new traffic) adds a row; readers take the latest per observation.
  await sql`
    CREATE TABLE assessments (
      id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      observation_id  bigint NOT NULL REFERENCES observations (id) ON DELETE CASCADE,
      kb_revision     text,
      vulnerable      text[] NOT NULL DEFAULT '{}',
      indeterminate   text[] NOT NULL DEFAULT '{}',
      -- why the verdicts are what they are (ScanRecord.notes)
      notes           jsonb NOT NULL DEFAULT '[]'::jsonb,
      assessed_at     timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX assessments_observation ON assessments (observation_id, id DESC)`.execute(db);
}
