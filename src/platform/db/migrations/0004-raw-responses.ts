/**
 * Migration 0004: raw responses kept, assessment a stage of its own.
 *
 * - `raw_responses`: content-addressed blobs (sha256 of the bytes), each stored once however many hosts sent
 *   it, gzip-compressed when that saves bytes (src/platform/db/raw-responses.ts says why a response is two
 *   blobs, head and body, and how they are capped). `data` is stored EXTERNAL: it is compressed already, so
 *   TOAST must not spend CPU trying pglz on it again.
 * - `observation_responses`: an observation's responses in the order they were answered (ord 0 = the main
 *   probe), with what the blobs do not hold (probe id, final URL, redirects, status, lengths and cuts), so the
 *   observation's ProbeResponse map can be rebuilt exactly and its detectors replayed (`tocsin reassess`).
 * - `assessments.fingerprint`: what a re-assessment took the service to be (product, build, precision and
 *   the knowledge base's edition/CU/SU) when it replayed the detectors; null in rows the scan writes, whose
 *   observation row already holds those values.
 *
 * Idempotent (IF NOT EXISTS throughout), so a half-applied copy of it, or one run by hand, is no obstacle;
 * runMigrations applies it under the advisory lock anyway. Observations stored before it have no responses:
 * a re-assessment then judges their stored build with the current knowledge base, without a replay.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE IF NOT EXISTS raw_responses (
      sha256      bytea PRIMARY KEY CHECK (octet_length(sha256) = 32),
      encoding    text NOT NULL CHECK (encoding IN ('identity', 'gzip')),
      -- uncompressed length (the bytes the sha256 is of)
      size        integer NOT NULL CHECK (size >= 0),
      data        bytea NOT NULL,
      first_seen  timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`ALTER TABLE raw_responses ALTER COLUMN data SET STORAGE EXTERNAL`.execute(db);

  await sql`
    CREATE TABLE IF NOT EXISTS observation_responses (
      observation_id    bigint NOT NULL REFERENCES observations (id) ON DELETE CASCADE,
      ord               smallint NOT NULL CHECK (ord >= 0),
      probe_id          text NOT NULL,
      url               text NOT NULL,
      status            integer NOT NULL,
      redirects         jsonb NOT NULL DEFAULT '[]'::jsonb,
      head_sha256       bytea NOT NULL REFERENCES raw_responses (sha256),
      body_sha256       bytea NOT NULL REFERENCES raw_responses (sha256),
      -- body length the probe client returned, and whether it (client) or storage (stored) cut it
      body_bytes        integer NOT NULL CHECK (body_bytes >= 0),
      client_truncated  boolean NOT NULL,
      stored_truncated  boolean NOT NULL,
      PRIMARY KEY (observation_id, ord)
    )`.execute(db);

  await sql`ALTER TABLE assessments ADD COLUMN IF NOT EXISTS fingerprint jsonb`.execute(db);
}
