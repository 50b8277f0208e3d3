/**
 * Migration 0008: stored attribution (issue 8).
 *
 * - `attribution_overrides`: an analyst's assignment of an address or network to an organisation (the `manual`
 *   rule; beats every other rule). Created by `tocsin attribution assign` (and by resolving a review-queue item).
 * - `prefix_asns`: an imported prefix-to-ASN table (routing-table dump), used when an exposure carries no ASN.
 * - `attributions`: the engine's answer per address (rule, evidence, confidence, the losing candidates), stamped
 *   with the registry revision it was computed at. One row per address, not per (ip, port): the registry is
 *   about addresses; the domain rule reads hostnames from every port of the address.
 * - `attribution_changes`: append-only history of owner changes per address (from -> to, the rule and the
 *   revision), so a re-attribution is an event the findings can show, never silent.
 * - `registry_revision`: one row; its `rev` is bumped in the same transaction as any change that can change an
 *   answer (networks, ASNs, domains, overrides, prefix table). Triggers, not application code: no write path
 *   can forget it. Transition tables make an import that changes nothing (idempotent re-import) bump nothing,
 *   so it triggers no re-attribution. A reader takes `rev` and the registry in one snapshot and stamps what it
 *   computed with that `rev`: a concurrent change leaves it stale, never wrongly fresh.
 */
import { sql, type Kysely } from 'kysely';

const WATCHED = ['constituency_networks', 'constituency_asns', 'constituency_domains', 'attribution_overrides', 'prefix_asns'];

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE attribution_overrides (
      id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      -- an address is stored as a /32 or /128
      target      cidr NOT NULL UNIQUE,
      org_id      bigint NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
      note        text,
      created_by  text NOT NULL,
      created_at  timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX attribution_overrides_gist ON attribution_overrides USING gist (target inet_ops)`.execute(db);

  await sql`
    CREATE TABLE prefix_asns (
      prefix       cidr NOT NULL,
      asn          bigint NOT NULL CHECK (asn BETWEEN 0 AND 4294967295),
      source       text NOT NULL,
      imported_at  timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (prefix, source)
    )`.execute(db);

  await sql`
    CREATE TABLE attributions (
      ip             inet PRIMARY KEY,
      org_id         bigint REFERENCES organisations (id) ON DELETE SET NULL,
      rule           text CHECK (rule IN ('manual', 'network', 'asn', 'domain')),
      confidence     real NOT NULL DEFAULT 0,
      evidence       jsonb,
      tie            boolean NOT NULL DEFAULT false,
      -- losing candidates with why they lost (Attribution.candidates)
      candidates     jsonb NOT NULL DEFAULT '[]'::jsonb,
      -- the registry revision this answer was computed at (stale when registry_revision.rev is higher)
      registry_rev   bigint NOT NULL,
      -- the newest observation time whose facts (hostnames, ASN, certificate) were used
      facts_until    timestamptz,
      attributed_at  timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX attributions_org ON attributions (org_id)`.execute(db);
  await sql`CREATE INDEX attributions_unattributed ON attributions (ip) WHERE org_id IS NULL`.execute(db);

  await sql`
    CREATE TABLE attribution_changes (
      id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      ip            inet NOT NULL,
      from_org_id   bigint,
      to_org_id     bigint,
      rule          text,
      registry_rev  bigint NOT NULL,
      at            timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX attribution_changes_ip ON attribution_changes (ip, id)`.execute(db);

  await sql`
    CREATE TABLE registry_revision (
      id   integer PRIMARY KEY CHECK (id = 1),
      rev  bigint NOT NULL
    )`.execute(db);
  await sql`INSERT INTO registry_revision (id, rev) VALUES (1, 1)`.execute(db);

  await sql`
    CREATE OR REPLACE FUNCTION tocsin_bump_registry_rev() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM changed) THEN
        UPDATE registry_revision SET rev = rev + 1 WHERE id = 1;
      END IF;
      RETURN NULL;
    END $$`.execute(db);
  // One trigger per event: PostgreSQL allows transition tables only on single-event triggers.
  for (const table of WATCHED) {
    for (const [event, ref] of [['INSERT', 'NEW'], ['UPDATE', 'NEW'], ['DELETE', 'OLD']] as const) {
      await sql`
        CREATE TRIGGER ${sql.raw(`${table}_rev_${event.toLowerCase()}`)}
          AFTER ${sql.raw(event)} ON ${sql.table(table)}
          REFERENCING ${sql.raw(ref)} TABLE AS changed
          FOR EACH STATEMENT EXECUTE FUNCTION tocsin_bump_registry_rev()`.execute(db);
    }
  }
}
