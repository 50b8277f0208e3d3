/**
 * Stored attribution in PostgreSQL (migration 0008): the registry read in bulk as the engine's snapshot (one
 * query per table, whatever the number of organisations), the facts about each address read from stored
 * observations (scan: the SNI/Host used and the TLS certificate; feed rows: hostname and ASN), the engine's
 * answers written with COPY, owner changes appended, manual overrides and the prefix-to-ASN table.
 *
 * The engine itself is pure (src/attribution) and is called by src/services/attribute.ts; this module only reads
 * and writes. A refresh runs in one REPEATABLE READ transaction (registry, revision and facts from one snapshot)
 * after a session advisory lock taken BEFORE that transaction begins: a snapshot taken while waiting for another
 * refresh would not see that refresh's rows, and writing them again would fail with a serialisation error.
 *
 * Why a refresh is shaped this way (bench/attribution-refresh.ts, 1,000,000 addresses; bench/README.md): the
 * facts arrive through ONE query over the observation rows themselves, sorted by address (the server sorts once;
 * this module folds the few rows of an address into its facts, which three GROUP BYs with ordered aggregates did
 * before at several times the server's CPU), streamed by `COPY (...) TO STDOUT` on a second connection that runs
 * on the refresh transaction's exported snapshot, so the server reads on one backend while it writes on the
 * other and node attributes. New rows go into `attributions` with COPY (into an empty table with its indexes
 * built afterwards); rows that exist and changed go into a temporary staging table with COPY and are applied by
 * one UPDATE at the end. The organisations written are locked once, not checked per row (migration 0027).
 */
import { once } from 'node:events';
import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type { ExposureFacts, ManualOverride, PrefixAsn, RegistrySnapshot } from '../../attribution/index.js';
import { withSession } from './raw-client.js';
import type { DbSchema, Json } from './schema.js';

type Executor = Kysely<DbSchema> | Transaction<DbSchema>;

/** Arbitrary constant naming "attribution refresh" among advisory locks (the registry's is 7_305_113_206). */
const REFRESH_LOCK_KEY = 7_305_113_208;

/**
 * Observation rows per page handed to the engine (and per COPY written): large enough that the per-COPY statement
 * vanishes, small enough that a page's rows, answers and COPY text (~1 MB) mostly die young. Measured at 200,000
 * addresses: 20,000 rows a page cost 15 s of GC in node over the bench's refreshes, 4,000 cost 10 s (and the
 * engine ran 1.8x faster on the same pages: fewer cache misses).
 */
export const REFRESH_PAGE = 4_000;

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
   * When the newest fact about the address reached us, in epoch milliseconds: a scan observation's time, a feed
   * row's IMPORT time (an old report imported today still brings new facts, so its report date would hide them
   * from the incremental refresh). Null when there is no observation. Known gap: an import still in flight when a
   * refresh reads carries its transaction's start time; if a newer scan of the same address is read first, that
   * import's facts wait for the next registry change or `--full` (a per-row sequence would close it; the schema
   * has none).
   */
  readonly newestMs: number | null;
  readonly facts: ExposureFacts;
}

/** One address to compute, with what is stored for it (from the refresh's cursor: one snapshot). */
export interface RefreshItem extends AddressFacts {
  readonly hadRow: boolean;
  /** The organisation of the stored row (null: unattributed, or no row). */
  readonly prevOrgId: number | null;
  /** The stored row's answer digest (`answerHash`; null: no row, or written before migration 0014). */
  readonly prevHash: string | null;
  /** The stored row's facts_until in epoch milliseconds (null: no row, or none). */
  readonly prevFactsUntilMs: number | null;
}

/** One computed answer to store, with what was stored before (from RefreshItem). */
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
  readonly factsUntilMs: number | null;
  /** The stored row's digest and facts_until: a row equal in both is not written again. */
  readonly prevHash: string | null;
  readonly prevFactsUntilMs: number | null;
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
  // The digest of `${orgId}|${rule}|${confidence}|${tie}|${evidence}|${candidates}`, fed piece by piece (the same
  // characters, so the same digest as rows stored before) instead of building that string a million times.
  answerPrefix(a, evidence);
  mix(candidates);
  return digest();
}

/** answerHash's lanes after `${orgId}|${rule}|${confidence}|${tie}|${evidence}|` (left in h1, h2). */
function answerPrefix(a: { orgId: number | null; rule: string | null; confidence: number; tie: boolean }, evidence: string | null): void {
  h1 = 0xdeadbeef;
  h2 = 0x41c6ce57;
  mix(String(a.orgId)); mix('|'); mix(String(a.rule)); mix('|'); mix(String(a.confidence)); mix('|'); mix(a.tie ? 'true' : 'false'); mix('|');
  mix(evidence ?? 'null'); mix('|');
}

/** The digest of the lanes h1, h2. */
function digest(): string {
  let x = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  const y = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(x ^ (x >>> 13), 3266489909);
  x >>>= 0;
  return base36(4294967296 * (2097151 & y) + x);
}

const DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz';

/** `n.toString(36)` for a whole number 0 <= n < 2^53 (exact: n % 36 and (n - r) / 36 are exact), without the runtime's radix conversion. */
function base36(n: number): string {
  let out = '';
  do {
    const r = n % 36;
    out = DIGITS[r]! + out;
    n = (n - r) / 36;
  } while (n > 0);
  return out;
}

/** answerHash's two lanes (module state: the digest is computed synchronously, one at a time). */
let h1 = 0;
let h2 = 0;

function mix(text: string): void {
  let a = h1;
  let b = h2;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 2654435761);
    b = Math.imul(b ^ c, 1597334677);
  }
  h1 = a;
  h2 = b;
}

/** The addresses of one refresh, page by page (see `RefreshSession.open`). */
export interface RefreshReader {
  /** The next page of addresses (never empty), or null when every address was read. */
  next(): Promise<readonly RefreshItem[] | null>;
}

export interface RefreshSession {
  readonly rev: number;
  /**
   * True when this refresh computes every address: `full`, the registry changed since the last complete refresh
   * (every row is then stale by revision), or no row is stored yet. The caller may then read the registry right
   * after opening the reader and build its index while the server sorts; otherwise the work is usually small or
   * none, and the registry is read only when the first page has addresses.
   */
  readonly everything: boolean;
  /** The registry at `rev` (same transaction, so the same snapshot), read once. */
  snapshot(): Promise<RegistrySnapshot>;
  /**
   * Starts the work query (all addresses with `everything`, else new ones or with newer facts) on the reader
   * connection; it runs on the server while the caller reads the registry and builds its index. Once per session.
   */
  open(): Promise<RefreshReader>;
  /**
   * Stores the answers that differ from the stored row (stamped with `rev`); a row whose answer and facts_until
   * are unchanged is not written. The COPYs are queued on the writer's connection (the counts are known at once);
   * resolves when few enough are waiting; changed rows are applied, and errors reported, when the session ends.
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
  // Nearly always plain digits (the work query keeps only cells that are an ASN): no regex, no substring.
  if (/^[0-9]{1,10}$/.test(cell)) {
    const d = Number(cell);
    return d <= 0xffffffff ? d : null;
  }
  const n = Number(cell.trim().replace(/^as/i, ''));
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff ? n : null;
};

function factsOf(r: FactsRow): AddressFacts {
  const sans = Array.isArray(r.cert_sans) ? r.cert_sans.filter((s): s is string => typeof s === 'string').slice(0, MAX_CERT_NAMES) : [];
  return {
    ip: r.ip,
    newestMs: r.newest,
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
     * Runs `fn` with a refresh session: the registry snapshot, a cursor over the addresses to compute and a
     * writer, in one REPEATABLE READ transaction, one refresh at a time (session advisory lock on a dedicated
     * connection, taken before BEGIN). `full`: every address, whatever its revision and facts; `pageSize`:
     * observation rows per FETCH (default REFRESH_PAGE).
     */
    async refreshSession<T>(full: boolean, pageSize: number | undefined, fn: (s: RefreshSession) => Promise<T>): Promise<T> {
      const rowsPerPage = Math.max(1, Math.floor(pageSize ?? REFRESH_PAGE));
      // One connection as Kysely and as a raw client (raw-client.ts): COPY is not a query Kysely can send. It
      // holds the lock and the transaction and writes; a second one reads the work on the same snapshot.
      // Both connections are taken BEFORE waiting for the lock: a refresh holding the lock then never waits for the
      // pool (were the reader taken after it, refreshes queued on the lock could hold every pooled connection while
      // the one holding the lock waited for its second: a deadlock no server could see).
      return withSession(db, async ({ db: conn, client }) => withSession(db, async ({ client: reader }) => {
        await sql`SELECT pg_advisory_lock(${REFRESH_LOCK_KEY}::bigint)`.execute(conn);
        try {
          await sql`BEGIN ISOLATION LEVEL REPEATABLE READ`.execute(conn);
          let w: ReturnType<typeof createWriter> | null = null;
          try {
            // The staged rows' UPDATE joins up to every stored row (a million on a national constituency).
            await sql`SET LOCAL work_mem = '256MB'`.execute(conn);
            // Durability of the commit: the table is a cache recomputed from observations and the registry; a
            // crash right after COMMIT loses at most the last refresh (the next one redoes it, the watermark and
            // rows go together), never consistency. Saves the wait for the WAL flush of a million rows.
            await sql`SET LOCAL synchronous_commit = off`.execute(conn);
            // The first query fixes the transaction's snapshot: the registry read later (lazily) is at `rev`.
            const revs = await sql<{ rev: string; watermark: string; empty: boolean }>`
              SELECT r.rev, w.rev AS watermark, NOT EXISTS (SELECT 1 FROM attributions) AS empty
              FROM registry_revision r, attribution_watermark w WHERE r.id = 1 AND w.id = 1`.execute(conn);
            const rev = Number(revs.rows[0]?.rev ?? 0);
            const watermark = Number(revs.rows[0]?.watermark ?? 0);
            const empty = revs.rows[0]?.empty === true;
            // Every row's answer is known valid at greatest(its registry_rev, watermark): below `rev`, all are
            // stale. With no row at all every address is new: the anti-joins would only confirm it.
            const everything = full || watermark < rev || empty;
            const exported = await sql<{ id: string }>`SELECT pg_export_snapshot() AS id`.execute(conn);
            const snapshotId = exported.rows[0]!.id;
            const rebuild = empty ? await dropIndexes(conn) : null;
            const walked = { complete: false };
            let registry: Promise<RegistryRead> | null = null;
            const writer = createWriter(conn, client, rev);
            w = writer;
            const out = await (async () => {
              // The reader's own transaction, on the writer's snapshot: what it reads is what the writer's sees.
              await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
              await reader.query(`SET TRANSACTION SNAPSHOT '${snapshotId.replace(/'/g, "''")}'`);
              // The work query sorts every observation row of the addresses to compute (a million on a national
              // constituency, ~150 MB): with the default 4 MB it sorts on disk.
              await reader.query(`SET LOCAL work_mem = '256MB'`);
              // No parallel workers: with two cores the refresh is bound by CPU (node attributes, the writer's
              // backend COPYs), and workers add their own CPU (gather, a sort per worker) to save wall time only on
              // an idle machine; one backend also keeps the bench's server CPU accounted (workers exit uncounted).
              await reader.query('SET LOCAL max_parallel_workers_per_gather = 0');
              let opened = false;
              const r = await fn({
                rev,
                everything,
                snapshot: async () => (await (registry ??= readRegistry(conn))).snapshot,
                open: () => {
                  if (opened) throw new Error('attribution refresh: the reader is opened once');
                  opened = true;
                  return Promise.resolve(openReader(reader, everything, empty, rowsPerPage, walked));
                },
                write: (rows) => writer.write(rows),
              });
              // A reader left in the middle of its COPY fails the session (withSession then closes the connection).
              if (opened && !walked.complete) throw new Error('attribution refresh: the reader was not read to its end');
              await reader.query('COMMIT');
              return r;
            })();
            await writer.finish();
            for (const statement of rebuild ?? []) await sql.raw(statement).execute(conn);
            // Every address was answered at `rev` (written, or found unchanged): the watermark says so, once.
            if (walked.complete && watermark < rev) await sql`UPDATE attribution_watermark SET rev = ${rev}::bigint WHERE id = 1`.execute(conn);
            await sql`COMMIT`.execute(conn);
            return out;
          } catch (e) {
            const copyError = await w?.settle();
            await sql`ROLLBACK`.execute(conn);
            throw copyError ?? e;
          }
        } finally {
          await sql`SELECT pg_advisory_unlock(${REFRESH_LOCK_KEY}::bigint)`.execute(conn);
        }
      }));
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
 * Epoch milliseconds of a timestamp truncated to milliseconds, as float8: date_part is a double (cheap, unlike
 * extract's numeric), whose error on a whole number of milliseconds is far below 0.5, so round() is exact; the
 * incremental refresh compares it with date_trunc('milliseconds', ...) on the server, so it must be.
 */
const epochMs = (ts: string): string => `round(date_part('epoch', date_trunc('milliseconds', ${ts})) * 1000)`;

/**
 * The refresh's work as SQL text (it runs as `COPY (...) TO STDOUT`, which takes no parameters; everything in it
 * is a constant): every observation row of the addresses to compute, sorted by address, scan rows before feed
 * rows, each kind newest first (the order the single-address aggregates use), with the stored row's state.
 * `everything`: every address. Otherwise only addresses without a row or with a fact newer than the row's
 * facts_until, found by anti-joins (nothing is aggregated: a refresh with nothing to do costs two index-backed
 * anti-joins over the observation tables). `empty`: the snapshot has no stored row, so `attributions` is not
 * read at all (the writer may hold it locked to rebuild its indexes: see createWriter).
 */
function workQuery(everything: boolean, empty: boolean): string {
  const scanWhere = everything ? 'TRUE' : 'o.ip IN (SELECT ip FROM work)';
  const feedWhere = everything ? 'TRUE' : 'f.ip IN (SELECT ip FROM work)';
  const work = everything ? '' : `
    WITH work AS MATERIALIZED (
      SELECT o.ip FROM observations o WHERE o.source = 'scan' AND NOT EXISTS (
        SELECT 1 FROM attributions a WHERE a.ip = o.ip AND a.facts_until >= date_trunc('milliseconds', o.scanned_at))
      UNION
      SELECT f.ip FROM feed_observations f JOIN feed_imports i ON i.id = f.import_id WHERE NOT EXISTS (
        SELECT 1 FROM attributions a WHERE a.ip = f.ip AND a.facts_until >= date_trunc('milliseconds', i.started_at)))`;
  const stored = empty
    ? `false AS had, NULL::bigint AS prev_org, NULL::text AS prev_hash, NULL::float8 AS prev_until FROM (`
    : `a.ip IS NOT NULL AS had, a.org_id AS prev_org, a.answer_hash AS prev_hash, ${epochMs('a.facts_until')} AS prev_until FROM (`;
  return `${work}
    SELECT host(u.ip) AS ip, u.k, u.t, u.h, u.cn, u.sans, u.asn, ${stored}
      SELECT o.ip, 0 AS k, o.scanned_at AS sk, o.id, ${epochMs('o.scanned_at')} AS t, o.hostname AS h,
        o.tls_cert->>'subjectCn' AS cn, CASE WHEN jsonb_typeof(o.tls_cert->'sans') = 'array' THEN o.tls_cert->'sans' END AS sans, NULL::text AS asn
      FROM observations o WHERE o.source = 'scan' AND ${scanWhere}
      UNION ALL
      SELECT f.ip, 1, f.report_date::timestamptz, f.id, ${epochMs('i.started_at')}, f.hostname, NULL, NULL,
        CASE WHEN f.fields->>'asn' ~ '${ASN_CELL}' THEN f.fields->>'asn' END
      FROM feed_observations f JOIN feed_imports i ON i.id = f.import_id WHERE ${feedWhere}
    ) u ${empty ? '' : 'LEFT JOIN attributions a ON a.ip = u.ip'}
    ORDER BY u.ip, u.k, u.sk DESC, u.id DESC`;
}

/** COPY's text-format escapes (what the server writes for these characters inside a value). */
const UNESCAPE: Readonly<Record<string, string>> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** A value of COPY's text format in text[a..b): `\N` is NULL; a backslash escapes the next character (see UNESCAPE). */
function copyValue(text: string, a: number, b: number): string | null {
  if (b - a === 2 && text.charCodeAt(a) === 92 && text.charCodeAt(a + 1) === 78) return null;
  const s = text.slice(a, b);
  if (s.indexOf('\\') < 0) return s;
  return s.replace(/\\(.)/gs, (_m, c: string) => UNESCAPE[c] ?? c);
}

/** A number of COPY's text format in text[a..b) (`\N`: null); plain digits without a substring, else Number(). */
function copyNumber(text: string, a: number, b: number): number | null {
  if (b - a === 2 && text.charCodeAt(a) === 92) return null;
  let n = 0;
  for (let i = a; i < b; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9 || i - a > 14) return Number(text.slice(a, b));
    n = n * 10 + d;
  }
  return b > a ? n : 0;
}

/**
 * The address being folded from its observation rows (sorted by address, then scan before feed, newest first: the
 * first value of each kind is the one the single-address aggregates keep). One object for the reader's life: a
 * field is cut out of the COPY text only when it is the value kept, and no object is made per row.
 */
interface Folding {
  ip: string | null;
  rows: number;
  newest: number | null;
  requestHost: string | null;
  cn: string | null;
  sans: string | null;
  feedHostname: string | null;
  asn: string | null;
  had: boolean;
  prevOrg: number | null;
  prevHash: string | null;
  prevUntil: number | null;
}

/** The folded address as the engine's input (its certificate names parsed now: only the row kept has them). */
function itemOf(f: Folding): RefreshItem {
  const ip = f.ip!;
  const cn = f.cn;
  const parsed: unknown = f.sans === null ? null : JSON.parse(f.sans);
  const names = Array.isArray(parsed) ? parsed.filter((s): s is string => typeof s === 'string').slice(0, MAX_CERT_NAMES) : [];
  return {
    ip, newestMs: f.newest,
    facts: { ip, asn: asnOf(f.asn), feedHostname: f.feedHostname, requestHost: f.requestHost, certificate: cn === null && names.length === 0 ? null : { cn, sans: names } },
    hadRow: f.had, prevOrgId: f.prevOrg, prevHash: f.prevHash, prevFactsUntilMs: f.prevUntil,
  };
}

/**
 * Folds one line of the work query's COPY text, text[pos..nl) (columns as in workQuery: ip, k, t, h, cn, sans,
 * asn, had, prev_org, prev_hash, prev_until), into `f`; returns false, folding nothing, when the line is another
 * address than f's (the caller then finishes f and starts the next address with `start`).
 */
function foldLine(text: string, pos: number, nl: number, f: Folding, start: boolean): boolean {
  const t0 = text.indexOf('\t', pos);
  if (t0 < 0 || t0 > nl) throw new Error('attribution refresh: a line of the work query has too few columns');
  if (start) {
    f.ip = text.slice(pos, t0);
    f.rows = 0;
    f.newest = null;
    f.requestHost = null;
    f.cn = null;
    f.sans = null;
    f.feedHostname = null;
    f.asn = null;
  } else {
    const ip = f.ip!;
    if (t0 - pos !== ip.length || !text.startsWith(ip, pos)) return false;
  }
  const t1 = text.indexOf('\t', t0 + 1);
  const t2 = text.indexOf('\t', t1 + 1);
  const t3 = text.indexOf('\t', t2 + 1);
  const t4 = text.indexOf('\t', t3 + 1);
  const t5 = text.indexOf('\t', t4 + 1);
  const t6 = text.indexOf('\t', t5 + 1);
  if (t6 < 0 || t6 > nl) throw new Error('attribution refresh: a line of the work query has too few columns');
  f.rows++;
  const t = copyNumber(text, t1 + 1, t2);
  if (t !== null && (f.newest === null || t > f.newest)) f.newest = t;
  if (text.charCodeAt(t0 + 1) === 48) {
    f.requestHost ??= copyValue(text, t2 + 1, t3);
    f.cn ??= copyValue(text, t3 + 1, t4);
    f.sans ??= copyValue(text, t4 + 1, t5);
  } else {
    f.feedHostname ??= copyValue(text, t2 + 1, t3);
    f.asn ??= copyValue(text, t5 + 1, t6);
  }
  if (start) {
    // The stored row's state: the same on every row of the address (one join), read from the first.
    const t7 = text.indexOf('\t', t6 + 1);
    const t8 = text.indexOf('\t', t7 + 1);
    const t9 = text.indexOf('\t', t8 + 1);
    if (t9 < 0 || t9 > nl) throw new Error('attribution refresh: a line of the work query has too few columns');
    f.had = text.charCodeAt(t6 + 1) === 116;
    f.prevOrg = copyNumber(text, t7 + 1, t8);
    f.prevHash = copyValue(text, t8 + 1, t9);
    f.prevUntil = copyNumber(text, t9 + 1, nl);
  }
  return true;
}

/**
 * The work query streamed by `COPY (...) TO STDOUT` on the reader connection (its own transaction on the
 * refresh's exported snapshot, so it sees exactly what the writer's transaction sees). Why not a cursor on the
 * writer's connection, as before: FETCHes and COPYs on one connection run one after the other, so the server read
 * only while nobody wrote (the "read" phase was mostly waiting for the previous page's COPY); pg's row objects and
 * type parsers cost more than splitting COPY text; and a cursor's plan may not run in parallel. The stream is read
 * with backpressure (the server waits while node computes), so memory stays at a few pages. The rows are folded
 * straight from the text (no object or substring per row: see Folding). A page holds the addresses finished once
 * at least `pageSize` observation rows were folded; an address's rows never straddle two pages (an address is
 * finished only when a line of the next one, or the end, shows where it ends).
 */
function openReader(client: pg.PoolClient, everything: boolean, empty: boolean, pageSize: number, walked: { complete: boolean }): RefreshReader {
  const stream = client.query(copyTo(`COPY (${workQuery(everything, empty)}) TO STDOUT`));
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const f: Folding = { ip: null, rows: 0, newest: null, requestHost: null, cn: null, sans: null, feedHostname: null, asn: null, had: false, prevOrg: null, prevHash: null, prevUntil: null };
  let items: RefreshItem[] = [];
  let rows = 0;
  let text = '';
  let pos = 0;
  let leftover: Buffer | null = null;
  let ended = false;
  const page = (): RefreshItem[] => {
    const out = items;
    items = [];
    rows = 0;
    return out;
  };
  return {
    async next(): Promise<readonly RefreshItem[] | null> {
      for (;;) {
        // Whole lines of the current chunk, until a page is full.
        while (pos < text.length) {
          if (rows >= pageSize) return page();
          const nl = text.indexOf('\n', pos);
          if (f.ip === null) foldLine(text, pos, nl, f, true);
          else if (!foldLine(text, pos, nl, f, false)) {
            items.push(itemOf(f));
            rows += f.rows;
            foldLine(text, pos, nl, f, true);
          }
          pos = nl + 1;
        }
        if (rows >= pageSize) return page();
        if (ended) {
          if (f.ip !== null) {
            items.push(itemOf(f));
            f.ip = null;
          }
          if (items.length > 0) return page();
          walked.complete = true;
          return null;
        }
        text = '';
        pos = 0;
        const c = await chunks.next();
        if (c.done === true) {
          ended = true;
          if (leftover !== null && leftover.length > 0) throw new Error('attribution refresh: the work query ended in the middle of a line');
        } else {
          // Whole lines only: a chunk may end inside a line (even inside a UTF-8 character); the rest waits.
          const buf: Buffer = leftover === null ? c.value : Buffer.concat([leftover, c.value]);
          const last = buf.lastIndexOf(10);
          leftover = last === buf.length - 1 ? null : buf.subarray(last + 1);
          if (last >= 0) text = buf.toString('utf8', 0, last + 1);
        }
      }
    },
  };
}

/**
 * Runs a COPY ... FROM STDIN of `text` on the writer's connection (the stream's 'finish' comes after the
 * server's ReadyForQuery, its 'error' with the server's error).
 */
async function copyIn(client: pg.PoolClient, statement: string, text: string): Promise<void> {
  const stream = client.query(copyFrom(statement));
  const done = once(stream, 'finish');
  done.catch(() => undefined);
  stream.end(text);
  await done;
}

/** A value for COPY's text format: JSON never holds a raw tab or line break, so only backslashes need doubling. */
const copyText = (s: string): string => (s.indexOf('\\') < 0 ? s : s.replace(/\\/g, '\\\\'));

/**
 * An evidence object's COPY text, and the digest lanes of the answer (owner, rule, confidence, tie, evidence) it was
 * in, before its candidates; `hash` is the whole digest with no candidates (`[]`, most answers).
 */
interface EvidenceText {
  readonly copy: string;
  readonly h1: number;
  readonly h2: number;
  readonly hash: string;
  readonly orgId: number | null;
  readonly rule: string | null;
  readonly confidence: number;
  readonly tie: boolean;
}

/** The date part (`YYYY-MM-DDT`) of isoText's last day. */
let isoDay = Number.NaN;
let isoDayText = '';

/** `new Date(ms).toISOString()` for a whole number of milliseconds, without a Date per call (the day's text is kept). */
function isoText(ms: number): string {
  const day = Math.floor(ms / 86_400_000);
  if (!Number.isInteger(ms) || day < 0 || day >= 2_932_897) return new Date(ms).toISOString(); // outside years 1970-9999
  if (day !== isoDay) {
    isoDay = day;
    isoDayText = new Date(day * 86_400_000).toISOString().slice(0, 11);
  }
  const t = ms - day * 86_400_000;
  const h = Math.floor(t / 3_600_000);
  const m = Math.floor(t / 60_000) % 60;
  const sec = Math.floor(t / 1000) % 60;
  const milli = t % 1000;
  return `${isoDayText}${h < 10 ? '0' : ''}${h}:${m < 10 ? '0' : ''}${m}:${sec < 10 ? '0' : ''}${sec}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

/** COPYs queued on the writer's connection at most: enough to keep the server busy, few enough to bound memory. */
const WRITES_IN_FLIGHT = 3;

/**
 * Drops the indexes and unique keys of `attributions` before a first refresh fills the EMPTY table, and returns
 * the statements that build them again (run before COMMIT). Measured on 1,000,000 rows (backend CPU): the COPY
 * cost 12.0 s with the three indexes maintained row by row, 7.1 s without, plus 1.1 s to build them afterwards.
 * The definitions are read from the catalog, so a later migration's index is rebuilt as it is. DROP takes an
 * ACCESS EXCLUSIVE lock until COMMIT: readers of the (empty) table wait for the first refresh instead of seeing
 * it empty, which is what the refresh contract asks of them anyway. Tried under a savepoint with a short
 * lock_timeout: if another session holds the table (or a key depends on an index), the refresh goes on with the
 * indexes in place.
 */
async function dropIndexes(conn: Executor): Promise<string[] | null> {
  await sql`SAVEPOINT attribution_bulk`.execute(conn);
  try {
    await sql`SET LOCAL lock_timeout = '2s'`.execute(conn);
    await sql`LOCK TABLE attributions IN ACCESS EXCLUSIVE MODE`.execute(conn);
    const defs = await sql<{ drop: string; create: string }>`
      SELECT CASE WHEN c.oid IS NULL THEN format('DROP INDEX %s', i.indexrelid::regclass)
                  ELSE format('ALTER TABLE attributions DROP CONSTRAINT %I', c.conname) END AS drop,
             CASE WHEN c.oid IS NULL THEN pg_get_indexdef(i.indexrelid)
                  ELSE format('ALTER TABLE attributions ADD CONSTRAINT %I %s', c.conname, pg_get_constraintdef(c.oid)) END AS create
      FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
      WHERE i.indrelid = 'attributions'::regclass
      ORDER BY c.oid IS NULL, i.indexrelid`.execute(conn);
    for (const d of defs.rows) await sql.raw(d.drop).execute(conn);
    await sql`SET LOCAL lock_timeout = DEFAULT`.execute(conn);
    await sql`RELEASE SAVEPOINT attribution_bulk`.execute(conn);
    return defs.rows.map((d) => d.create);
  } catch {
    await sql`ROLLBACK TO SAVEPOINT attribution_bulk`.execute(conn);
    await sql`RELEASE SAVEPOINT attribution_bulk`.execute(conn);
    return null;
  }
}

/**
 * The writer of one refresh. New addresses go straight into `attributions` with COPY (no row can conflict: only
 * refreshes write the table, one at a time, and the snapshot showed none). Rows that exist and differ go into a
 * temporary staging table with COPY; `finish` applies them with one UPDATE and appends the owner changes. Rows
 * equal in answer and facts_until are not written. An owner change is recorded only for an address that HAD a
 * row whose organisation differs (unattributed counts as an owner: null -> X and X -> null are changes). A first
 * answer is not a change: there was no owner to change from, and a first refresh of a million addresses would
 * otherwise write a million history rows that say nothing. The COPYs run one after another on the writer's
 * connection (pg queues a client's queries; doing it here keeps at most WRITES_IN_FLIGHT pages of text alive).
 */
function createWriter(conn: Executor, client: pg.PoolClient, rev: number) {
  let tail: Promise<void> = Promise.resolve();
  const jobs: Promise<void>[] = [];
  let staged = false;
  // The organisations the written rows name: locked before COMMIT (migration 0027 replaced the foreign key).
  const orgs = new Set<number>();
  // facts_until as COPY text (what Date#toISOString writes): the date part is kept per day, the time of day is
  // formatted by hand (toISOString per address cost ~2 us: scan and feed rows alternate, so a one-entry memo missed).
  const iso = (ms: number | null): string => (ms === null ? '\\N' : isoText(ms));
  // Rows arrive in address order, so neighbours usually share the index's evidence object (the same network): a
  // one-entry memo of its COPY text and digest lanes saves most of the JSON and hashing without growing the heap
  // (a map over every evidence object measured worse at 200k: +110 MB peak RSS, more GC, no CPU saved).
  let memo: (EvidenceText & { readonly evidence: Json | null }) | null = null;
  const textOf = (w: AttributionWrite): EvidenceText => {
    const ev = w.evidence;
    const e = memo;
    if (e !== null && e.evidence === ev && e.orgId === w.orgId && e.rule === w.rule && e.confidence === w.confidence && e.tie === w.tie) return e;
    const json = ev === null ? null : JSON.stringify(ev);
    answerPrefix(w, json);
    const l1 = h1;
    const l2 = h2;
    mix('[]');
    const made = { evidence: ev, copy: json === null ? '\\N' : copyText(json), h1: l1, h2: l2, hash: digest(), orgId: w.orgId, rule: w.rule, confidence: w.confidence, tie: w.tie };
    memo = made;
    return made;
  };
  const queue = (run: () => Promise<void>): void => {
    // After a failure the transaction is aborted: what was queued behind it is not sent (tail stays rejected).
    tail = tail.then(run);
    tail.catch(() => undefined);
    jobs.push(tail);
  };
  return {
    /**
     * Queues the COPYs of one page's differences; returns what they do (known before the server runs them) once
     * fewer than WRITES_IN_FLIGHT COPYs are waiting (the server writes while the caller computes the next page).
     */
    async write(rows: readonly AttributionWrite[]): Promise<WriteResult> {
      let fresh = '';
      let stage = '';
      let changed = 0;
      let written = 0;
      for (const w of rows) {
        const cands = Array.isArray(w.candidates) && w.candidates.length === 0 ? '[]' : JSON.stringify(w.candidates);
        const e = textOf(w);
        let hash = e.hash;
        if (cands !== '[]') {
          h1 = e.h1;
          h2 = e.h2;
          mix(cands);
          hash = digest();
        }
        if (w.hadRow && w.prevHash === hash) {
          if (w.prevFactsUntilMs !== w.factsUntilMs) {
            // Same answer from newer facts: only the mark that those facts were read (the answer's revision stays).
            stage += `${w.ip}\t\\N\t\\N\t0\t\\N\tf\t[]\t${iso(w.factsUntilMs)}\t\\N\t\\N\tf\tt\n`;
            written++;
          }
          continue;
        }
        if (w.orgId !== null) orgs.add(w.orgId);
        const line = `${w.ip}\t${w.orgId ?? '\\N'}\t${w.rule ?? '\\N'}\t${w.confidence}\t${e.copy}\t${w.tie ? 't' : 'f'}\t${copyText(cands)}\t`;
        written++;
        if (!w.hadRow) {
          fresh += `${line}${rev}\t${iso(w.factsUntilMs)}\t${hash}\n`;
          continue;
        }
        const moved = w.prevOrgId !== w.orgId;
        if (moved) changed++;
        stage += `${line}${iso(w.factsUntilMs)}\t${hash}\t${w.prevOrgId ?? '\\N'}\t${moved ? 't' : 'f'}\tf\n`;
      }
      if (fresh !== '') {
        queue(() => copyIn(client, 'COPY attributions (ip, org_id, rule, confidence, evidence, tie, candidates, registry_rev, facts_until, answer_hash) FROM STDIN', fresh));
      }
      if (stage !== '') {
        if (!staged) {
          staged = true;
          queue(() => client.query(`
            CREATE TEMP TABLE attribution_stage (
              ip inet, org_id bigint, rule text, confidence real, evidence jsonb, tie boolean, candidates jsonb,
              facts_until timestamptz, answer_hash text, prev_org bigint, moved boolean, touch boolean) ON COMMIT DROP`).then(() => undefined));
        }
        queue(() => copyIn(client, 'COPY attribution_stage FROM STDIN', stage));
      }
      // Wait for the oldest COPYs (a failure surfaces here, at once) until few enough are queued.
      while (jobs.length >= WRITES_IN_FLIGHT) await jobs.shift();
      return { changed, written };
    },

    /**
     * Waits for every queued COPY, then applies the staged rows (one statement each) and the owner changes, and
     * locks the organisations written (FOR KEY SHARE, what the foreign key's per-row check did: see migration
     * 0027; an organisation deleted since the snapshot fails the refresh with a serialisation error).
     */
    async finish(): Promise<void> {
      await tail;
      if (orgs.size > 0) await sql`SELECT 1 FROM organisations WHERE id = ANY(${[...orgs]}::bigint[]) FOR KEY SHARE`.execute(conn);
      if (!staged) return;
      await sql`
        INSERT INTO attribution_changes (ip, from_org_id, to_org_id, rule, registry_rev)
        SELECT ip, prev_org, org_id, rule, ${rev}::bigint FROM attribution_stage WHERE moved`.execute(conn);
      await sql`
        UPDATE attributions a SET org_id = s.org_id, rule = s.rule, confidence = s.confidence, evidence = s.evidence, tie = s.tie,
          candidates = s.candidates, registry_rev = ${rev}::bigint, facts_until = s.facts_until, answer_hash = s.answer_hash, attributed_at = now()
        FROM attribution_stage s WHERE a.ip = s.ip AND NOT s.touch`.execute(conn);
      await sql`UPDATE attributions a SET facts_until = s.facts_until FROM attribution_stage s WHERE a.ip = s.ip AND s.touch`.execute(conn);
    },

    /**
     * Waits for the queued COPYs (before a ROLLBACK) and returns the first one's error, if any: the statements
     * queued after a failed COPY are not sent, so that error is the one to report.
     */
    async settle(): Promise<unknown> {
      try {
        await tail;
        return undefined;
      } catch (e) {
        return e;
      }
    },
  };
}
