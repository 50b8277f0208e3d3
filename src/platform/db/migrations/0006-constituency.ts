/**
 * Migration 0006: the constituency registry (issue 8).
 *
 * - `organisations`: name unique case-insensitively (lower(name)), sector, country, size, parent.
 * - `constituency_networks` (cidr, GiST inet_ops for containment: `network >>= $ip`), `constituency_asns`,
 *   `constituency_domains`, `constituency_contacts` (role-typed), `constituency_opt_outs`.
 * - Two layers as certbund-contact keeps them: every row has `layer` (imported | manual) and `source` (the
 *   import's source name, or 'manual'); an import replaces only its own source's imported rows. Manual rows win
 *   wherever both say something (attribution and the organisation's attributes).
 * - `constituency_audit`: every change (who, when, action, entity, before/after as jsonb). It keeps the
 *   organisation's id without a foreign key, so the history of a removed organisation stays.
 * A network given as a range "a - b" is stored as its minimal CIDR list, each row keeping the range text.
 * Table names carry a `constituency_` prefix where a later stage might want the plain word (networks, domains).
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  const layer = sql.raw(`layer text NOT NULL CHECK (layer IN ('imported', 'manual')),
      source text NOT NULL CHECK (source <> '')`);
  await sql`
    CREATE TABLE organisations (
      id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      name        text NOT NULL CHECK (name <> ''),
      sector      text,
      country     text CHECK (country ~ '^[A-Z]{2}$'),
      size        text,
      parent_id   bigint REFERENCES organisations (id) ON DELETE SET NULL CHECK (parent_id <> id),
      ${layer},
      created_at  timestamptz NOT NULL DEFAULT now(),
      updated_at  timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX organisations_name_key ON organisations (lower(name))`.execute(db);
  // ON DELETE SET NULL looks children up by parent: without this index removing n organisations costs n scans.
  await sql`CREATE INDEX organisations_parent ON organisations (parent_id) WHERE parent_id IS NOT NULL`.execute(db);

  await sql`
    CREATE TABLE constituency_networks (
      id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      org_id         bigint NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
      network        cidr NOT NULL,
      -- what the input said: the CIDR, an address, or the range this CIDR is part of
      text           text NOT NULL,
      -- RPSL: the abuse-mailbox of the network object's own abuse-c (a fallback contact)
      abuse_mailbox  text,
      ${layer},
      UNIQUE (org_id, network, layer, source)
    )`.execute(db);
  await sql`CREATE INDEX constituency_networks_gist ON constituency_networks USING gist (network inet_ops)`.execute(db);
  await sql`CREATE INDEX constituency_networks_source ON constituency_networks (source, layer)`.execute(db);

  await sql`
    CREATE TABLE constituency_asns (
      id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      org_id  bigint NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
      asn     bigint NOT NULL CHECK (asn BETWEEN 1 AND 4294967295),
      ${layer},
      UNIQUE (org_id, asn, layer, source)
    )`.execute(db);
  await sql`CREATE INDEX constituency_asns_asn ON constituency_asns (asn)`.execute(db);

  await sql`
    CREATE TABLE constituency_domains (
      id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      org_id  bigint NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
      -- lower-case, punycode, no trailing dot: matched as a suffix of host names
      domain  text NOT NULL CHECK (domain = lower(domain) AND domain <> ''),
      ${layer},
      UNIQUE (org_id, domain, layer, source)
    )`.execute(db);
  await sql`CREATE INDEX constituency_domains_domain ON constituency_domains (domain)`.execute(db);

  await sql`
    CREATE TABLE constituency_contacts (
      id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      org_id    bigint NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
      role      text NOT NULL CHECK (role IN ('security', 'abuse', 'technical')),
      email     text NOT NULL,
      language  text,
      pgp       text CHECK (pgp ~ '^([0-9A-F]{40}|[0-9A-F]{64})$'),
      ${layer}
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX constituency_contacts_key ON constituency_contacts (org_id, role, lower(email), layer, source)`.execute(db);

  await sql`
    CREATE TABLE constituency_opt_outs (
      id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      org_id      bigint NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
      -- what the organisation opted out of (e.g. "all", "cve:CVE-2021-26855", "source:shadowserver")
      condition   text NOT NULL CHECK (condition <> ''),
      -- null: until removed
      expires_at  timestamptz,
      ${layer},
      created_at  timestamptz NOT NULL DEFAULT now(),
      UNIQUE (org_id, condition, layer, source)
    )`.execute(db);

  await sql`
    CREATE TABLE constituency_audit (
      id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      at         timestamptz NOT NULL DEFAULT now(),
      who        text NOT NULL,
      action     text NOT NULL CHECK (action IN ('create', 'update', 'delete')),
      entity     text NOT NULL CHECK (entity IN ('organisation', 'network', 'asn', 'domain', 'contact', 'opt-out')),
      entity_id  bigint NOT NULL,
      org_id     bigint NOT NULL,
      -- the import's source, or 'manual'
      source     text NOT NULL,
      before     jsonb,
      after      jsonb
    )`.execute(db);
  await sql`CREATE INDEX constituency_audit_org ON constituency_audit (org_id, at)`.execute(db);
}
