/**
 * Stored attribution in PostgreSQL (migration 0008): the registry read in bulk as the engine's snapshot (one
 * query per table, whatever the number of organisations), the facts about each address read from stored
 * observations (scan: the SNI/Host used and the TLS certificate; feed rows: hostname and ASN), the engine's
 * answers written in batches, owner changes appended, manual overrides and the prefix-to-ASN table.
 *
 * The engine itself is pure (src/attribution) and is called by src/services/attribute.ts; this module only reads
 * and writes. A refresh runs in one REPEATABLE READ transaction (registry, revision and facts from one snapshot)
 * after a session advisory lock taken BEFORE that transaction begins: a snapshot taken while waiting for another
 * refresh would not see that refresh's rows, and writing them again would fail with a serialisation error.
 */
import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import type { ExposureFacts, ManualOverride, PrefixAsn, RegistrySnapshot } from '../../attribution/index.js';
import type { DbSchema, Json } from './schema.js';

type Executor = Kysely<DbSchema> | Transaction<DbSchema>;

/** Arbitrary constant naming "attribution refresh" among advisory locks (the registry's is 7_305_113_206). */
const REFRESH_LOCK_KEY = 7_305_113_208;

/** Addresses fetched from the refresh cursor at a time (and rows per INSERT). */
export const REFRESH_PAGE = 2_000;

/** Certificate names kept per address: a certificate may list hundreds of SANs; the engine caps candidates anyway. */
const MAX_CERT_NAMES = 64;

/** An ASN cell of a feed row: `64500` or `AS64500` (Shadowserver writes the number). */
const ASN_CELL = '^\\s*([Aa][Ss])?[0-9]{1,10}\\s*$';

/** The registry as the engine reads it, with the revision it was read at. */
export interface RegistryRead {
  readonly rev: number;
  readonly snapshot: RegistrySnapshot;
}

/** What stored observations say about one address (all ports, newest first where one value is kept). */
export interface AddressFacts {
  /** As stored (host text of the inet). */
  readonly ip: string;
  /**
   * When the newest fact about the address reached us: a scan observation's time, a feed row's IMPORT time (an
   * old report imported today still brings new facts, so its report date would hide them from the incremental
   * refresh). Null when there is no observation. Known gap: an import still in flight when a refresh reads carries
   * its transaction's start time; if a newer scan of the same address is read first, that import's facts wait for
   * the next registry change or `--full` (a per-row sequence would close it; the schema has none).
   */
  readonly newest: Date | null;
  readonly facts: ExposureFacts;
}

/** One page of work for a refresh: the facts, and the organisation stored before (null row = none). */
export interface RefreshItem extends AddressFacts {
  readonly hadRow: boolean;
  /** The organisation of the stored row (null: unattributed, or no row). */
  readonly prevOrgId: number | null;
  /** The stored row's answer digest (`answerHash`; null: no row, or written before migration 0014). */
  readonly prevHash: string | null;
  /** The stored row's facts_until (null: no row, or none). */
  readonly prevFactsUntil: Date | null;
}

/** One computed answer to store, with what was stored before (from the refresh's cursor: one snapshot). */
export interface AttributionWrite {
  readonly ip: string;
  readonly hadRow: boolean;
  readonly prevOrgId: number | null;
  readonly orgId: number | null;
  readonly rule: 'manual' | 'network' | 'asn' | 'domain' | null;
  readonly confidence: number;
  readonly evidence: Json | null;
  readonly tie: boolean;
  readonly candidates: Json;
  readonly factsUntil: Date | null;
  /** The stored row's digest and facts_until (from RefreshItem): a row equal in both is not written again. */
  readonly prevHash: string | null;
  readonly prevFactsUntil: Date | null;
}

/** What a page's write did: owner changes (each appended to attribution_changes) and rows written. */
export interface WriteResult {
  readonly changed: number;
  readonly written: number;
}

/**
 * A digest of a stored answer: what the refresh compares instead of the answer's jsonb columns (reading those
 * back for a million rows costs more than computing this). `evidence` and `candidates` as JSON text. Not a
 * cryptographic hash on purpose: sha256 through node:crypto cost ~7 us per row at load (a million per refresh);
 * this is two 32-bit multiply-xorshift lanes (cyrb53: 53 bits), compared only with the same address's previous
 * digest, so a collision (2^-53 per changed answer) would at worst leave one answer unwritten until the next change.
 */
export function answerHash(a: { orgId: number | null; rule: string | null; confidence: number; tie: boolean }, evidence: string | null, candidates: string): string {
  const text = `${String(a.orgId)}|${String(a.rule)}|${String(a.confidence)}|${String(a.tie)}|${evidence ?? 'null'}|${candidates}`;
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}

export interface RefreshSession {
  readonly rev: number;
  /**
   * The registry at `rev`, read on first call (same transaction, so the same snapshot): a refresh with nothing
   * to do never reads or indexes it.
   */
  snapshot(): Promise<RegistrySnapshot>;
  /** Addresses to compute, in pages: all with `full`, else new ones, stale by revision, or with newer facts. */
  pages(full: boolean, pageSize?: number): AsyncGenerator<readonly RefreshItem[]>;
  /**
   * Stores the answers that differ from the stored row (stamped with `rev`); a row whose answer and facts_until
   * are unchanged is not written. Returns owner changes (each appended to attribution_changes) and rows written.
   */
  write(rows: readonly AttributionWrite[]): Promise<WriteResult>;
}

export interface StoredAttribution {
  readonly ip: string;
  readonly orgId: number | null;
  readonly org: string | null;
  readonly rule: string | null;
  readonly confidence: number;
  readonly evidence: Json | null;
  readonly tie: boolean;
  readonly candidates: Json;
  readonly registryRev: number;
  readonly factsUntil: string | null;
  readonly attributedAt: string;
}

export interface OwnerChange {
  readonly at: string;
  readonly fromOrgId: number | null;
  readonly fromOrg: string | null;
  readonly toOrgId: number | null;
  readonly toOrg: string | null;
  readonly rule: string | null;
  readonly registryRev: number;
}

/** A review-queue item: an address without an owner, or whose owner is a tie. */
export interface ReviewRow {
  readonly ip: string;
  readonly kind: 'unattributed' | 'ambiguous';
  readonly orgId: number | null;
  readonly org: string | null;
  readonly rule: string | null;
  readonly candidates: Json;
  readonly ports: readonly number[];
  readonly hostnames: readonly string[];
  readonly feedAsn: number | null;
  readonly firstSeen: string | null;
  readonly lastSeen: string | null;
}

export interface OverrideRow {
  readonly id: number;
  readonly target: string;
  readonly orgId: number;
  readonly org: string;
  readonly note: string | null;
  readonly createdBy: string;
  readonly createdAt: string;
}

interface ReviewDbRow {
  ip: string; org_id: number | null; org: string | null; rule: string | null; tie: boolean; candidates: Json;
  ports: number[] | null; hostnames: string[] | null; feed_asn: string | null; first_seen: Date | null; last_seen: Date | null;
}

interface FactsRow {
  ip: string;
  /** Epoch milliseconds (a number parses far faster than timestamp text, a million times per refresh). */
  newest: number | null;
  request_host: string | null;
  cert_cn: string | null;
  cert_sans: Json | null;
  feed_hostname: string | null;
  asn: string | null;
  had_row: boolean;
  prev_org: number | null;
  prev_hash: string | null;
  prev_facts_until: number | null;
}

const asnOf = (cell: string | null): number | null => {
  if (cell === null) return null;
  const n = Number(cell.trim().replace(/^as/i, ''));
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff ? n : null;
};

function factsOf(r: FactsRow): AddressFacts {
  const sans = Array.isArray(r.cert_sans) ? r.cert_sans.filter((s): s is string => typeof s === 'string').slice(0, MAX_CERT_NAMES) : [];
  return {
    ip: r.ip,
    newest: r.newest === null ? null : new Date(r.newest),
    facts: {
      ip: r.ip,
      asn: asnOf(r.asn),
      feedHostname: r.feed_hostname,
      requestHost: r.request_host,
      certificate: r.cert_cn === null && sans.length === 0 ? null : { cn: r.cert_cn, sans },
    },
  };
}

/**
 * The facts per address, as SQL over `observations` (source `scan` only: a feed's Exchange rows are also in
 * `feed_observations`, read there with their ASN) and `feed_observations`, for the addresses of the CTE `work`
 * (`workCte`: columns ip, newest, had_row, prev_org). One value per kind: the newest. The join with `work` keeps
 * the aggregation to the addresses that need it (none on a refresh with nothing to do).
 */
function factsQuery(workCte: RawBuilder<unknown>): RawBuilder<FactsRow> {
  return sql<FactsRow>`
    WITH work AS MATERIALIZED (${workCte}), scan AS (
      SELECT o.ip,
        (array_agg(o.hostname ORDER BY o.scanned_at DESC, o.id DESC) FILTER (WHERE o.hostname IS NOT NULL))[1] AS request_host,
        (array_agg(o.tls_cert->>'subjectCn' ORDER BY o.scanned_at DESC, o.id DESC) FILTER (WHERE o.tls_cert->>'subjectCn' IS NOT NULL))[1] AS cert_cn,
        (array_agg(o.tls_cert->'sans' ORDER BY o.scanned_at DESC, o.id DESC) FILTER (WHERE jsonb_typeof(o.tls_cert->'sans') = 'array'))[1] AS cert_sans
      FROM observations o JOIN work w ON w.ip = o.ip WHERE o.source = 'scan' GROUP BY o.ip
    ), feed AS (
      SELECT f.ip,
        (array_agg(f.hostname ORDER BY f.report_date DESC, f.id DESC) FILTER (WHERE f.hostname IS NOT NULL))[1] AS feed_hostname,
        (array_agg(f.fields->>'asn' ORDER BY f.report_date DESC, f.id DESC) FILTER (WHERE f.fields->>'asn' ~ ${ASN_CELL}))[1] AS asn
      FROM feed_observations f JOIN work w ON w.ip = f.ip GROUP BY f.ip
    )
    SELECT host(w.ip) AS ip, (extract(epoch FROM w.newest) * 1000)::float8 AS newest, w.had_row, w.prev_org, w.prev_hash,
      (extract(epoch FROM w.prev_facts_until) * 1000)::float8 AS prev_facts_until, s.request_host, s.cert_cn, s.cert_sans, f.feed_hostname, f.asn
    FROM work w LEFT JOIN scan s ON s.ip = w.ip LEFT JOIN feed f ON f.ip = w.ip`;
}

/**
 * When the newest fact about each address reached us (scan: observation time; feed: import time), cut to
 * milliseconds (it comes back as a JS Date and is compared with what was stored). `where` restricts the addresses.
 */
function newestQuery(scanWhere: RawBuilder<unknown>, feedWhere: RawBuilder<unknown>): RawBuilder<unknown> {
  return sql`
    SELECT ip, date_trunc('milliseconds', max(t)) AS newest FROM (
      SELECT o.ip, o.scanned_at AS t FROM observations o WHERE o.source = 'scan' AND ${scanWhere}
      UNION ALL
      SELECT f.ip, i.started_at FROM feed_observations f JOIN feed_imports i ON i.id = f.import_id WHERE ${feedWhere}) u
    GROUP BY ip`;
}

/** The registry, one query per table (every read in the caller's transaction, so one snapshot). */
async function readRegistry(trx: Executor): Promise<RegistryRead> {
  const rev = await trx.selectFrom('registry_revision').select('rev').where('id', '=', 1).executeTakeFirst();
  const orgs = await trx.selectFrom('organisations').select(['id', 'name', 'sector']).execute();
  const contacts = await trx.selectFrom('constituency_contacts').select(['org_id', 'role', 'email', 'language', 'pgp', 'layer'])
    .orderBy('org_id').orderBy('role').orderBy(sql`lower(email)`).orderBy('layer', 'desc').execute();
  const networks = await trx.selectFrom('constituency_networks')
    .select(['id', 'org_id', sql<string>`network::text`.as('network'), 'layer', 'abuse_mailbox', 'source']).execute();
  const asns = await trx.selectFrom('constituency_asns').select(['id', 'org_id', 'asn', 'layer', 'source']).execute();
  const domains = await trx.selectFrom('constituency_domains').select(['id', 'org_id', 'domain', 'layer', 'source']).execute();
  const overrides = await trx.selectFrom('attribution_overrides').select(['id', 'org_id', sql<string>`target::text`.as('target'), 'note']).execute();
  const prefixes = await trx.selectFrom('prefix_asns').select([sql<string>`prefix::text`.as('prefix'), 'asn']).execute();
  const byOrg = new Map<number, { role: 'security' | 'abuse' | 'technical'; email: string; language: string | null; openpgpFingerprint: string | null }[]>();
  for (const c of contacts) {
    const list = byOrg.get(c.org_id) ?? [];
    // The manual copy of a contact comes first (layer desc); the imported duplicate adds nothing.
    if (!list.some((x) => x.role === c.role && x.email.toLowerCase() === c.email.toLowerCase())) {
      list.push({ role: c.role, email: c.email, language: c.language, openpgpFingerprint: c.pgp });
    }
    byOrg.set(c.org_id, list);
  }
  return {
    rev: rev?.rev ?? 0,
    snapshot: {
      organisations: orgs.map((o) => ({ id: o.id, name: o.name, sector: o.sector, contacts: byOrg.get(o.id) ?? [] })),
      networks: networks.map((n) => ({ id: n.id, orgId: n.org_id, network: n.network, layer: n.layer, abuseMailbox: n.abuse_mailbox, source: n.source })),
      asns: asns.map((a) => ({ id: a.id, orgId: a.org_id, asn: a.asn, layer: a.layer, source: a.source })),
      domains: domains.map((d) => ({ id: d.id, orgId: d.org_id, domain: d.domain, layer: d.layer, source: d.source })),
      overrides: overrides.map((o): ManualOverride => ({ id: o.id, orgId: o.org_id, target: o.target, note: o.note })),
      prefixAsns: prefixes.map((p): PrefixAsn => ({ prefix: p.prefix, asn: p.asn })),
    },
  };
}

export function createAttributionStore(db: Kysely<DbSchema>) {
  return {
    /** The registry (with overrides and the prefix table) and its revision, read in one snapshot. */
    async registry(): Promise<RegistryRead> {
      return db.transaction().setIsolationLevel('repeatable read').execute((trx) => readRegistry(trx));
    },

    /**
     * Runs `fn` with the registry snapshot and a cursor over the addresses to compute, in one REPEATABLE READ
     * transaction, one refresh at a time (session advisory lock on a dedicated connection, taken before BEGIN).
     */
    async refreshSession<T>(fn: (s: RefreshSession) => Promise<T>): Promise<T> {
      return db.connection().execute(async (conn) => {
        await sql`SELECT pg_advisory_lock(${REFRESH_LOCK_KEY}::bigint)`.execute(conn);
        try {
          await sql`BEGIN ISOLATION LEVEL REPEATABLE READ`.execute(conn);
          try {
            // The work query hashes and groups every address (a million on a national constituency): with the
            // default 4 MB those spill to temporary files. This transaction only; per sort or hash node.
            await sql`SET LOCAL work_mem = '64MB'`.execute(conn);
            // The first query fixes the transaction's snapshot: the registry read later (lazily) is at `rev`.
            const revs = await sql<{ rev: string; watermark: string }>`
              SELECT r.rev, w.rev AS watermark FROM registry_revision r, attribution_watermark w WHERE r.id = 1 AND w.id = 1`.execute(conn);
            const rev = Number(revs.rows[0]?.rev ?? 0);
            const watermark = Number(revs.rows[0]?.watermark ?? 0);
            const walked = { complete: false };
            let registry: Promise<RegistryRead> | null = null;
            const out = await fn({
              rev,
              snapshot: async () => (await (registry ??= readRegistry(conn))).snapshot,
              pages: (full, pageSize = REFRESH_PAGE) => pages(conn, rev, watermark, full, pageSize, walked),
              write: (rows) => writeAnswers(conn, rev, rows),
            });
            // Every address was answered at `rev` (written, or found unchanged): the watermark says so, once.
            if (walked.complete && watermark < rev) await sql`UPDATE attribution_watermark SET rev = ${rev}::bigint WHERE id = 1`.execute(conn);
            await sql`COMMIT`.execute(conn);
            return out;
          } catch (e) {
            await sql`ROLLBACK`.execute(conn);
            throw e;
          }
        } finally {
          await sql`SELECT pg_advisory_unlock(${REFRESH_LOCK_KEY}::bigint)`.execute(conn);
        }
      });
    },

    /** The stored facts about one address, or null when nothing was observed there. */
    async factsOf(ip: string): Promise<AddressFacts | null> {
      const work = sql`SELECT n.ip, n.newest, false AS had_row, NULL::bigint AS prev_org, NULL::text AS prev_hash, NULL::timestamptz AS prev_facts_until FROM (${newestQuery(sql`o.ip = ${ip}::inet`, sql`f.ip = ${ip}::inet`)}) n`;
      const row = (await factsQuery(work).execute(db)).rows[0];
      return row === undefined ? null : factsOf(row);
    },

    /**
     * The stored answer for an address (null: never computed). `registryRev` is the revision the answer is known
     * valid at: the row's own, or the watermark of the last complete refresh when that is higher.
     */
    async stored(ip: string): Promise<StoredAttribution | null> {
      const r = await db.selectFrom('attributions as a').leftJoin('organisations as o', 'o.id', 'a.org_id')
        .select([sql<string>`host(a.ip)`.as('ip'), 'a.org_id', 'o.name', 'a.rule', 'a.confidence', 'a.evidence', 'a.tie', 'a.candidates',
          sql<number>`greatest(a.registry_rev, (SELECT w.rev FROM attribution_watermark w WHERE w.id = 1))`.as('registry_rev'), 'a.facts_until', 'a.attributed_at'])
        .where(sql<boolean>`a.ip = ${ip}::inet`).executeTakeFirst();
      if (r === undefined) return null;
      return {
        ip: r.ip, orgId: r.org_id, org: r.name, rule: r.rule, confidence: r.confidence, evidence: r.evidence, tie: r.tie, candidates: r.candidates,
        registryRev: Number(r.registry_rev), factsUntil: r.facts_until === null ? null : r.facts_until.toISOString(), attributedAt: r.attributed_at.toISOString(),
      };
    },

    /** The last owner changes of an address, newest first. */
    async changes(ip: string, limit = 10): Promise<OwnerChange[]> {
      const rows = await db.selectFrom('attribution_changes as c')
        .leftJoin('organisations as f', 'f.id', 'c.from_org_id').leftJoin('organisations as t', 't.id', 'c.to_org_id')
        .select(['c.at', 'c.from_org_id', 'f.name as from_name', 'c.to_org_id', 't.name as to_name', 'c.rule', 'c.registry_rev'])
        .where(sql<boolean>`c.ip = ${ip}::inet`).orderBy('c.id', 'desc').limit(limit).execute();
      return rows.map((r) => ({ at: r.at.toISOString(), fromOrgId: r.from_org_id, fromOrg: r.from_name, toOrgId: r.to_org_id, toOrg: r.to_name, rule: r.rule, registryRev: r.registry_rev }));
    },

    /**
     * The review queue: addresses with observations and no owner, then ties ("ambiguous"), in address order,
     * keyset pages so memory stays flat. Ports, hostnames and times come from every stored observation.
     */
    async *review(limit: number | null, page = 1000): AsyncGenerator<ReviewRow> {
      let after: string | null = null;
      let left = limit ?? Number.POSITIVE_INFINITY;
      for (;;) {
        const n = Math.min(page, left);
        if (n <= 0) return;
        const afterFilter: RawBuilder<unknown> = after === null ? sql`TRUE` : sql`a.ip > ${after}::inet`;
        const rows: ReviewDbRow[] = (await sql<ReviewDbRow>`
          SELECT host(a.ip) AS ip, a.org_id, o.name AS org, a.rule, a.tie, a.candidates,
            (SELECT array_agg(DISTINCT p ORDER BY p) FROM (
               SELECT port AS p FROM observations WHERE ip = a.ip UNION SELECT port FROM feed_observations WHERE ip = a.ip AND port IS NOT NULL) ps) AS ports,
            (SELECT array_agg(DISTINCT h ORDER BY h) FROM (
               SELECT hostname AS h FROM observations WHERE ip = a.ip AND hostname IS NOT NULL
               UNION SELECT hostname FROM feed_observations WHERE ip = a.ip AND hostname IS NOT NULL) hs) AS hostnames,
            (SELECT f.fields->>'asn' FROM feed_observations f WHERE f.ip = a.ip AND f.fields->>'asn' ~ ${ASN_CELL}
               ORDER BY f.report_date DESC, f.id DESC LIMIT 1) AS feed_asn,
            (SELECT min(t) FROM (SELECT scanned_at AS t FROM observations WHERE ip = a.ip
               UNION ALL SELECT coalesce(seen_at, report_date::timestamptz) FROM feed_observations WHERE ip = a.ip) ts) AS first_seen,
            (SELECT max(t) FROM (SELECT scanned_at AS t FROM observations WHERE ip = a.ip
               UNION ALL SELECT coalesce(seen_at, report_date::timestamptz) FROM feed_observations WHERE ip = a.ip) ts) AS last_seen
          FROM attributions a LEFT JOIN organisations o ON o.id = a.org_id
          WHERE (a.org_id IS NULL OR a.tie) AND ${afterFilter}
          ORDER BY a.ip LIMIT ${n}`.execute(db)).rows;
        for (const r of rows) {
          yield {
            ip: r.ip, kind: r.org_id === null ? 'unattributed' : 'ambiguous', orgId: r.org_id, org: r.org, rule: r.rule, candidates: r.candidates,
            ports: r.ports ?? [], hostnames: r.hostnames ?? [], feedAsn: asnOf(r.feed_asn),
            firstSeen: r.first_seen === null ? null : r.first_seen.toISOString(), lastSeen: r.last_seen === null ? null : r.last_seen.toISOString(),
          };
        }
        left -= rows.length;
        if (rows.length < n) return;
        after = rows[rows.length - 1]?.ip ?? after;
      }
    },

    /** Organisation id by name (case-insensitive), or null. */
    async orgId(name: string): Promise<{ id: number; name: string } | null> {
      const r = await db.selectFrom('organisations').select(['id', 'name']).where(sql<boolean>`lower(name) = lower(${name})`).executeTakeFirst();
      return r ?? null;
    },

    /**
     * Creates or replaces the manual override of `target` (a canonical CIDR); who and when are kept on the row
     * (constituency_audit's entity list has no override kind; the override row is its own audit record).
     */
    async assign(target: string, orgId: number, note: string | null, who: string): Promise<OverrideRow> {
      await db.insertInto('attribution_overrides').values({ target, org_id: orgId, note, created_by: who })
        .onConflict((oc) => oc.column('target').doUpdateSet({ org_id: orgId, note, created_by: who, created_at: sql`now()` })
          // The same assignment again changes nothing (and so bumps no registry revision).
          .where(sql<boolean>`attribution_overrides.org_id IS DISTINCT FROM ${orgId}::bigint OR attribution_overrides.note IS DISTINCT FROM ${note}::text`))
        .execute();
      const row = await this.override(target);
      if (row === null) throw new Error(`override ${target} vanished after being written`);
      return row;
    },

    async override(target: string): Promise<OverrideRow | null> {
      const r = await db.selectFrom('attribution_overrides as v').innerJoin('organisations as o', 'o.id', 'v.org_id')
        .select(['v.id', sql<string>`v.target::text`.as('target'), 'v.org_id', 'o.name', 'v.note', 'v.created_by', 'v.created_at'])
        .where(sql<boolean>`v.target = ${target}::cidr`).executeTakeFirst();
      return r === undefined ? null : { id: r.id, target: r.target, orgId: r.org_id, org: r.name, note: r.note, createdBy: r.created_by, createdAt: r.created_at.toISOString() };
    },

    /** Removes the override of exactly `target`; false when there was none. */
    async unassign(target: string): Promise<boolean> {
      const r = await db.deleteFrom('attribution_overrides').where(sql<boolean>`target = ${target}::cidr`).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    },

    /**
     * Replaces one source's prefix-to-ASN rows in one transaction. Rows that are already there with the same ASN
     * are left alone, so re-importing the same table bumps no registry revision and re-attributes nothing.
     */
    async replacePrefixes(source: string, rows: readonly { prefix: string; asn: number }[]): Promise<{ added: number; changed: number; removed: number }> {
      return db.transaction().execute(async (trx) => {
        await sql`CREATE TEMP TABLE prefix_import (prefix cidr PRIMARY KEY, asn bigint NOT NULL) ON COMMIT DROP`.execute(trx);
        for (let i = 0; i < rows.length; i += 20_000) {
          const c = rows.slice(i, i + 20_000);
          // A prefix listed twice keeps its last ASN (as a routing table dump read top to bottom would).
          await sql`
            INSERT INTO prefix_import (prefix, asn)
            SELECT DISTINCT ON (p) p, a FROM unnest(${c.map((r) => r.prefix)}::cidr[], ${c.map((r) => r.asn)}::bigint[]) WITH ORDINALITY AS t(p, a, n)
            ORDER BY p, n DESC
            ON CONFLICT (prefix) DO UPDATE SET asn = EXCLUDED.asn`.execute(trx);
        }
        const removed = await sql`
          DELETE FROM prefix_asns x WHERE x.source = ${source} AND NOT EXISTS (SELECT 1 FROM prefix_import i WHERE i.prefix = x.prefix)`.execute(trx);
        const changed = await sql`
          UPDATE prefix_asns x SET asn = i.asn, imported_at = now() FROM prefix_import i
          WHERE x.source = ${source} AND x.prefix = i.prefix AND x.asn <> i.asn`.execute(trx);
        const added = await sql`
          INSERT INTO prefix_asns (prefix, asn, source) SELECT prefix, asn, ${source} FROM prefix_import ORDER BY prefix
          ON CONFLICT (prefix, source) DO NOTHING`.execute(trx);
        return { added: Number(added.numAffectedRows ?? 0), changed: Number(changed.numAffectedRows ?? 0), removed: Number(removed.numAffectedRows ?? 0) };
      });
    },

    async registryRev(): Promise<number> {
      const r = await db.selectFrom('registry_revision').select('rev').where('id', '=', 1).executeTakeFirst();
      return r?.rev ?? 0;
    },
  };
}

export type AttributionStore = ReturnType<typeof createAttributionStore>;

/**
 * The addresses to compute, through a server-side cursor in the refresh's transaction (FETCH and the batched
 * writes interleave on the one connection; memory stays at one page).
 */
async function* pages(
  conn: Executor, rev: number, watermark: number, full: boolean, pageSize: number, walked: { complete: boolean },
): AsyncGenerator<readonly RefreshItem[]> {
  // Stale by revision: below the current one, counting the watermark (every row was answered at it).
  const stale = full ? sql`TRUE` : watermark >= rev
    ? sql`a.ip IS NULL OR a.facts_until IS NULL OR a.facts_until < n.newest`
    : sql`a.ip IS NULL OR greatest(a.registry_rev, ${watermark}::bigint) < ${rev}::bigint OR a.facts_until IS NULL OR a.facts_until < n.newest`;
  const work = sql`
    SELECT n.ip, n.newest, a.ip IS NOT NULL AS had_row, a.org_id AS prev_org, a.answer_hash AS prev_hash, a.facts_until AS prev_facts_until
    FROM (${newestQuery(sql`TRUE`, sql`TRUE`)}) n LEFT JOIN attributions a ON a.ip = n.ip WHERE ${stale}`;
  await sql`DECLARE attribution_work NO SCROLL CURSOR FOR ${factsQuery(work)}`.execute(conn);
  try {
    for (;;) {
      const r = await sql<FactsRow>`FETCH ${sql.raw(String(Math.max(1, Math.floor(pageSize))))} FROM attribution_work`.execute(conn);
      if (r.rows.length > 0) {
        yield r.rows.map((row) => ({ ...factsOf(row), hadRow: row.had_row, prevOrgId: row.prev_org, prevHash: row.prev_hash,
          prevFactsUntil: row.prev_facts_until === null ? null : new Date(row.prev_facts_until) }));
      }
      if (r.rows.length < pageSize) {
        walked.complete = true;
        return;
      }
    }
  } finally {
    await sql`CLOSE attribution_work`.execute(conn);
  }
}

/**
 * Writes what differs, per page: new and changed answers in one multi-row upsert (unnest: one parameter per
 * column), rows whose answer is unchanged but whose facts are newer get only their facts_until, and rows equal in
 * both are not touched (after a registry change that moves 1% of the addresses, 1% of the rows are written). An
 * owner change is recorded only for an address that HAD a row whose organisation differs (unattributed counts as
 * an owner: null -> X and X -> null are changes). A first answer is not a change: there was no owner to change
 * from, and a first refresh of a million addresses would otherwise write a million history rows that say nothing.
 */
async function writeAnswers(conn: Executor, rev: number, rows: readonly AttributionWrite[]): Promise<WriteResult> {
  let changed = 0;
  let written = 0;
  for (let i = 0; i < rows.length; i += REFRESH_PAGE) {
    const ips: string[] = [];
    const orgs: (number | null)[] = [];
    const rules: (string | null)[] = [];
    const confidences: number[] = [];
    const evidences: (string | null)[] = [];
    const ties: boolean[] = [];
    const candidates: string[] = [];
    const hashes: string[] = [];
    // Epoch milliseconds, turned into timestamptz by the server (toISOString cost ~3 us per row at load).
    const until: (number | null)[] = [];
    const touchIps: string[] = [];
    const touchUntil: (number | null)[] = [];
    const moved: AttributionWrite[] = [];
    for (const w of rows.slice(i, i + REFRESH_PAGE)) {
      const evidence = w.evidence === null ? null : JSON.stringify(w.evidence);
      const cands = JSON.stringify(w.candidates);
      const hash = answerHash(w, evidence, cands);
      const factsUntil = w.factsUntil === null ? null : w.factsUntil.getTime();
      if (w.hadRow && w.prevHash === hash) {
        if ((w.prevFactsUntil?.getTime() ?? null) !== (w.factsUntil?.getTime() ?? null)) {
          touchIps.push(w.ip);
          touchUntil.push(factsUntil);
        }
        continue;
      }
      ips.push(w.ip); orgs.push(w.orgId); rules.push(w.rule); confidences.push(w.confidence); evidences.push(evidence);
      ties.push(w.tie); candidates.push(cands); hashes.push(hash); until.push(factsUntil);
      if (w.hadRow && w.prevOrgId !== w.orgId) moved.push(w);
    }
    if (ips.length > 0) {
      await sql`
        INSERT INTO attributions (ip, org_id, rule, confidence, evidence, tie, candidates, registry_rev, facts_until, answer_hash, attributed_at)
        SELECT ip, org_id, rule, confidence, evidence::jsonb, tie, candidates::jsonb, ${rev}::bigint, to_timestamp(facts_until / 1000.0), answer_hash, now()
        FROM unnest(${ips}::inet[], ${orgs}::bigint[], ${rules}::text[], ${confidences}::real[], ${evidences}::text[], ${ties}::boolean[],
                    ${candidates}::text[], ${until}::float8[], ${hashes}::text[])
          AS t(ip, org_id, rule, confidence, evidence, tie, candidates, facts_until, answer_hash)
        ON CONFLICT (ip) DO UPDATE SET org_id = EXCLUDED.org_id, rule = EXCLUDED.rule, confidence = EXCLUDED.confidence,
          evidence = EXCLUDED.evidence, tie = EXCLUDED.tie, candidates = EXCLUDED.candidates, registry_rev = EXCLUDED.registry_rev,
          facts_until = EXCLUDED.facts_until, answer_hash = EXCLUDED.answer_hash, attributed_at = EXCLUDED.attributed_at`.execute(conn);
    }
    if (touchIps.length > 0) {
      // Same answer from newer facts: only the mark that those facts were read (the answer's revision stays).
      await sql`
        UPDATE attributions a SET facts_until = to_timestamp(t.facts_until / 1000.0)
        FROM unnest(${touchIps}::inet[], ${touchUntil}::float8[]) AS t(ip, facts_until) WHERE a.ip = t.ip`.execute(conn);
    }
    if (moved.length > 0) {
      await sql`
        INSERT INTO attribution_changes (ip, from_org_id, to_org_id, rule, registry_rev)
        SELECT ip, f, o, r, ${rev}::bigint
        FROM unnest(${moved.map((w) => w.ip)}::inet[], ${moved.map((w) => w.prevOrgId)}::bigint[], ${moved.map((w) => w.orgId)}::bigint[],
                    ${moved.map((w) => w.rule)}::text[]) AS x(ip, f, o, r)`.execute(conn);
    }
    changed += moved.length;
    written += ips.length + touchIps.length;
  }
  return { changed, written };
}
