/**
 * Migration 0017: incident reports (issue 10 §5).
 *
 * - `incidents`: one staged report. The validated stage data is kept whole as jsonb (`stage0`, `stage1`, `final`);
 *   the columns the triage queue filters and sorts on are copied out (status, category, owner, organisation,
 *   reporter contact, TLP, times). An organisation from the registry (`org_id`) or free text (`org_text`) when the
 *   reporter's organisation is not in it. The SLA due times are stored (computed by src/incidents/sla.ts from the
 *   received time and the category, rewritten when the category changes) so "overdue" is a plain indexed filter.
 * - `incident_events`: append-only history (an UPDATE or DELETE is refused by a trigger): who did what when.
 * - `incident_links`: typed links to findings, campaigns and other reports (unique per target, so an automatic
 *   link made twice is one link).
 * - `incident_attachments`: uploaded files (forensics-kit output), at most 5 MiB each (checked here too), with
 *   their SHA-256 (one copy per report and content), a sanitised file name and the declared content type.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE incidents (
      id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      status             text NOT NULL DEFAULT 'received'
                         CHECK (status IN ('received', 'triage', 'incident', 'duplicate', 'rejected', 'resolved')),
      category           text CHECK (category IN ('C1', 'C2', 'C3', 'C4', 'C5', 'C6')),
      owner              text,
      org_id             bigint REFERENCES organisations (id) ON DELETE RESTRICT,
      org_text           text,
      reporter_name      text NOT NULL,
      reporter_email     text NOT NULL,
      reporter_phone     text NOT NULL,
      tlp                text NOT NULL CHECK (tlp IN ('CLEAR', 'GREEN', 'AMBER', 'AMBER+STRICT', 'RED')),
      types              text[] NOT NULL,
      cves               text[] NOT NULL DEFAULT '{}',
      ongoing            boolean NOT NULL,
      detected_at        timestamptz NOT NULL,
      stage0             jsonb NOT NULL,
      stage1             jsonb,
      final              jsonb,
      stage1_at          timestamptz,
      final_at           timestamptz,
      duplicate_of       bigint REFERENCES incidents (id) ON DELETE SET NULL,
      reported_by        text NOT NULL,
      reported_via       text NOT NULL CHECK (reported_via IN ('portal', 'api', 'cli', 'staff')),
      created_at         timestamptz NOT NULL DEFAULT now(),
      updated_at         timestamptz NOT NULL DEFAULT now(),
      acknowledged_at    timestamptz,
      first_response_at  timestamptz,
      resolved_at        timestamptz,
      ack_due_at         timestamptz NOT NULL,
      response_due_at    timestamptz NOT NULL,
      CHECK (org_id IS NOT NULL OR org_text IS NOT NULL),
      CHECK (duplicate_of IS NULL OR duplicate_of <> id)
    )`.execute(db);
  await sql`CREATE INDEX incidents_status ON incidents (status, id)`.execute(db);
  await sql`CREATE INDEX incidents_org ON incidents (org_id, id)`.execute(db);
  await sql`
    CREATE TABLE incident_events (
      id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      incident_id  bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
      at           timestamptz NOT NULL DEFAULT now(),
      who          text NOT NULL,
      kind         text NOT NULL CHECK (kind IN ('reported', 'stage1', 'final', 'triaged', 'linked', 'attachment')),
      detail       jsonb
    )`.execute(db);
  await sql`CREATE INDEX incident_events_incident ON incident_events (incident_id, id)`.execute(db);
  await sql`
    CREATE OR REPLACE FUNCTION tocsin_incident_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'incident_events is append-only';
    END $$`.execute(db);
  await sql`
    CREATE TRIGGER incident_events_no_update BEFORE UPDATE OR DELETE ON incident_events
      FOR EACH STATEMENT EXECUTE FUNCTION tocsin_incident_events_append_only()`.execute(db);
  await sql`
    CREATE TABLE incident_links (
      id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      incident_id  bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
      kind         text NOT NULL CHECK (kind IN ('finding', 'campaign', 'incident')),
      target_id    bigint NOT NULL,
      relation     text NOT NULL CHECK (relation IN ('related', 'duplicate-of', 'reported-from')),
      created_at   timestamptz NOT NULL DEFAULT now(),
      created_by   text NOT NULL,
      UNIQUE (incident_id, kind, target_id)
    )`.execute(db);
  await sql`
    CREATE TABLE incident_attachments (
      id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      incident_id   bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
      filename      text NOT NULL CHECK (filename <> '' AND length(filename) <= 200),
      content_type  text NOT NULL,
      bytes         integer NOT NULL CHECK (bytes >= 0 AND bytes <= 5242880),
      sha256        text NOT NULL,
      content       bytea NOT NULL,
      uploaded_at   timestamptz NOT NULL DEFAULT now(),
      uploaded_by   text NOT NULL,
      CHECK (octet_length(content) = bytes),
      UNIQUE (incident_id, sha256)
    )`.execute(db);
}
