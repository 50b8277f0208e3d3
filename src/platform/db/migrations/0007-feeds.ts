/**
 * Migration 0007: feed imports (issue 8).
 *
 * Where feed rows go, and why a sibling table: every row a feed delivers lands in `feed_observations` with its
 * provenance (import → feed, file; line, report type and date), the raw line, the feed's own claims (tags,
 * reported CVEs, compromised) and its remaining fields. Rows the knowledge base can judge (Exchange services)
 * ALSO get a row in `observations` (source = 'feed:<name>', scan_id and attempt_id null; linked by
 * `observation_id`) and an `assessments` row, exactly like a scanned host: `tocsin reassess`, the findings and
 * the exposures read one table for "what did we learn about this service", whatever the source. Port-open and
 * generic rows stay in the sibling table only: they are facts about a port, not a judged service, and putting
 * them in `observations` would make every reader of it (report, reassess) filter them out again. Provenance
 * columns in `observations` itself would be null for every scanned row (the larger part).
 *
 * - A report is stored once: `feed_imports.sha256` (of the report's content, decompressed, so x.csv and
 *   x.csv.gz are one report) is unique, and a row is unique per (feed, report type, ip, port, report date).
 *   The report type is part of the key: scan_http and scan_exchange rows about one ip:port on one day are
 *   different facts. A row without a port (some special reports) is keyed with port -1.
 * - `feed_quarantine`: every row that could not be read, with file, line, raw text and the error.
 * An import runs in one transaction: a file rejected half-way (or a repeated delivery) leaves nothing behind.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE IF NOT EXISTS feed_imports (
      id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      feed         text NOT NULL,
      format       text NOT NULL,
      file         text NOT NULL,
      report_type  text,
      report_date  date,
      -- set when the import completes; unique: the same report content is stored once
      sha256       bytea UNIQUE CHECK (sha256 IS NULL OR octet_length(sha256) = 32),
      rows_read    integer NOT NULL DEFAULT 0,
      imported     integer NOT NULL DEFAULT 0,
      duplicate    integer NOT NULL DEFAULT 0,
      quarantined  integer NOT NULL DEFAULT 0,
      skipped      integer NOT NULL DEFAULT 0,
      started_at   timestamptz NOT NULL DEFAULT now(),
      finished_at  timestamptz
    )`.execute(db);

  await sql`
    CREATE TABLE IF NOT EXISTS feed_observations (
      id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      import_id       bigint NOT NULL REFERENCES feed_imports (id) ON DELETE CASCADE,
      -- the assessed observation (Exchange rows); null for port-open and generic rows. Deferred: the row is
      -- written first (its insert says whether it is new), its observation in the next statement.
      observation_id  bigint UNIQUE REFERENCES observations (id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED,
      feed            text NOT NULL,
      kind            text NOT NULL CHECK (kind IN ('exchange', 'port-open', 'generic')),
      report_type     text NOT NULL,
      report_date     date NOT NULL,
      ip              inet NOT NULL,
      port            integer CHECK (port BETWEEN 0 AND 65535),
      transport       text,
      hostname        text,
      seen_at         timestamptz,
      tags            text[] NOT NULL DEFAULT '{}',
      reported_cves   text[] NOT NULL DEFAULT '{}',
      compromised     boolean NOT NULL DEFAULT false,
      product         text,
      build           text,
      build_precision text CHECK (build_precision IN ('exact', 'cu')),
      fields          jsonb NOT NULL DEFAULT '{}'::jsonb,
      line            integer NOT NULL,
      raw             text NOT NULL
    )`.execute(db);
  await sql`
    CREATE UNIQUE INDEX IF NOT EXISTS feed_observations_key
      ON feed_observations (feed, report_type, ip, (coalesce(port, -1)), report_date)`.execute(db);

  await sql`
    CREATE TABLE IF NOT EXISTS feed_quarantine (
      id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      import_id    bigint NOT NULL REFERENCES feed_imports (id) ON DELETE CASCADE,
      feed         text NOT NULL,
      format       text NOT NULL,
      file         text NOT NULL,
      line         integer NOT NULL,
      raw          text NOT NULL,
      error        text NOT NULL,
      imported_at  timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
}
