/**
 * Attribution use cases over the constituency registry: read the registry into the engine's snapshot shape,
 * index it once, attribute and explain (`tocsin whois`). The engine (src/attribution) is pure; this is where the
 * store is read.
 */
import {
  attribute,
  buildAttributionIndex,
  type Attribution,
  type AttributionIndex,
  type ExposureFacts,
  type RegistrySnapshot,
  type SnapshotProblem,
} from '../attribution/index.js';
import type { Kysely } from 'kysely';
import { TocsinError } from '../core/errors.js';
import { canonicalIp, formatIp, parseCidr, parseIp } from '../core/ip.js';
import { sanitiseText } from '../core/text.js';
import type { ConstituencyStore, OrgDetail } from '../platform/db/constituency-store.js';
import {
  createAttributionStore,
  type AttributionStore,
  type AttributionWrite,
  type OverrideRow,
  type OwnerChange,
  type RefreshItem,
  type ReviewRow,
  type StoredAttribution,
} from '../platform/db/attribution-store.js';
import type { DbSchema, Json } from '../platform/db/schema.js';

/**
 * The engine's snapshot of the registry as the constituency store exports it. Each stored network row is one CIDR
 * (a range is stored as its CIDRs). That export has no attribution overrides or prefix-to-ASN table: empty here;
 * the attribution store's bulk reader (`createAttributionStore(db).registry()`) has them.
 */
export function snapshotOf(orgs: readonly OrgDetail[]): RegistrySnapshot {
  return {
    organisations: orgs.map((o) => ({
      id: o.id,
      name: o.name,
      sector: o.sector,
      contacts: o.contacts.map((c) => ({ role: c.role, email: c.email, language: c.language, openpgpFingerprint: c.pgp })),
    })),
    networks: orgs.flatMap((o) => o.networks.map((n) => ({
      id: n.id, orgId: o.id, network: n.network, layer: n.layer, abuseMailbox: n.abuseMailbox, source: n.source,
    }))),
    asns: orgs.flatMap((o) => o.asns.map((a) => ({ id: a.id, orgId: o.id, asn: a.asn, layer: a.layer, source: a.source }))),
    domains: orgs.flatMap((o) => o.domains.map((d) => ({ id: d.id, orgId: o.id, domain: d.domain, layer: d.layer, source: d.source }))),
    overrides: [],
  };
}

/**
 * Where the registry is read from: the attribution store (one query per table, with overrides and the prefix
 * table, in one snapshot) or, for callers that hold only the constituency store, its export (no overrides).
 */
export type RegistrySource = Pick<AttributionStore, 'registry'> | Pick<ConstituencyStore, 'exportAll'>;

/** The registry, read and indexed: build once, attribute many. */
export async function loadAttributionIndex(source: RegistrySource): Promise<AttributionIndex> {
  if ('registry' in source) return buildAttributionIndex((await source.registry()).snapshot);
  return buildAttributionIndex(snapshotOf(await source.exportAll()));
}

export interface WhoisAnswer {
  readonly attribution: Attribution;
  /** Registry entries the engine could not use (should be none: the store validates what it keeps). */
  readonly problems: readonly SnapshotProblem[];
  readonly registry: { readonly organisations: number; readonly indexMs: number };
}

/** `tocsin whois`: who an address (with what else is known about it) belongs to, and why. */
export async function whois(source: RegistrySource, facts: ExposureFacts): Promise<WhoisAnswer> {
  const index = await loadAttributionIndex(source);
  return {
    attribution: attribute(index, facts),
    problems: index.problems,
    registry: { organisations: index.organisations.size, indexMs: index.stats.buildMs },
  };
}

export interface RefreshSummary {
  /** The registry revision the stored answers now carry. */
  readonly registryRev: number;
  /** Addresses looked at (new, stale by revision, or with newer facts). */
  readonly considered: number;
  readonly attributed: number;
  readonly unattributed: number;
  /** Addresses whose organisation changed (each is a row in attribution_changes). */
  readonly changed: number;
  /** Rows written (new, changed answer, or newer facts); an answer recomputed unchanged is not written. */
  readonly written: number;
  readonly ms: number;
  /** Where the time went (wall ms): registry read and index, reading facts, the engine, writing. */
  readonly phases: { readonly registryMs: number; readonly readMs: number; readonly engineMs: number; readonly writeMs: number };
}


/** Plain data to a jsonb value (the engine's results are JSON-safe: strings, numbers, booleans, null). */
const asJson = (v: unknown): Json => v as Json;

/**
 * The answers to store for one page. The bulk pass skips the losers' sentences (most of a query's cost). The
 * stored `candidates` feed the review queue (unattributed and tied addresses): those with losers are computed
 * again with them; an attributed address without a tie stores none (`tocsin whois` recomputes the explanation).
 */
function answersFor(index: AttributionIndex, page: readonly RefreshItem[]): { writes: AttributionWrite[]; attributed: number } {
  const writes: AttributionWrite[] = new Array<AttributionWrite>(page.length);
  let attributed = 0;
  for (let i = 0; i < page.length; i++) {
    const item = page[i]!;
    let a = attribute(index, item.facts, DECISIONS_ONLY);
    if (a.omitted > 0 && (a.tie || a.orgId === null)) a = attribute(index, item.facts);
    if (a.orgId !== null) attributed++;
    writes[i] = {
      ip: item.ip, hadRow: item.hadRow, prevOrgId: item.prevOrgId, orgId: a.orgId, rule: a.rule, confidence: a.confidence, evidence: asJson(a.evidence), tie: a.tie,
      candidates: asJson(a.omitted > 0 && !(a.tie || a.orgId === null) ? NO_CANDIDATES : a.candidates), factsUntilMs: item.newestMs,
      prevHash: item.prevHash, prevFactsUntilMs: item.prevFactsUntilMs,
    };
  }
  return { writes, attributed };
}

const DECISIONS_ONLY = { candidates: false } as const;
const NO_CANDIDATES: readonly never[] = [];

/**
 * Bring the stored attributions (table `attributions`, migration 0008) up to date: every address with an
 * observation (scan or feed, table `observations` and `feed_observations`) gets a row; rows computed at an older
 * registry revision (counting the watermark of migration 0014), or before newer facts about the address, are
 * recomputed, and written only where the answer (or its facts mark) differs; owner changes are appended to
 * `attribution_changes`. Idempotent: a second call with nothing changed writes nothing.
 * CONTRACT for other services (exposures, findings, campaigns): call this before reading `attributions`.
 *
 * The registry, its revision and the facts are read in one REPEATABLE READ snapshot, and every answer is stamped
 * with that revision: a registry change committed meanwhile leaves the answers stale (recomputed next time), never
 * wrongly fresh. Refreshes run one at a time (advisory lock). Addresses stream in pages from one query on the
 * store's reader connection while earlier pages' COPYs run on its writer connection, so the server reads and
 * writes while the engine runs. When every address is to be computed, the registry is read and indexed while the
 * server sorts the work; otherwise only once the first page shows there is work.
 */
export async function refreshAttributions(
  db: Kysely<DbSchema>,
  opts: { readonly who?: string; readonly full?: boolean; readonly pageSize?: number } = {},
): Promise<RefreshSummary> {
  const started = performance.now();
  let sessionEnd = 0;
  // pageSize: observation rows per FETCH (the store's REFRESH_PAGE unless a test asks for tiny pages).
  const r = await createAttributionStore(db).refreshSession(opts.full === true, opts.pageSize, async (s) => {
    let index: AttributionIndex | null = null;
    let registryMs = 0;
    let considered = 0;
    let attributed = 0;
    let changed = 0;
    let written = 0;
    let readMs = 0;
    let engineMs = 0;
    let writeMs = 0;
    const t0 = performance.now();
    // The work query starts first (on its own connection): the server sorts while the registry is read and indexed.
    const reader = await s.open();
    const t1 = performance.now();
    if (s.everything) index = buildAttributionIndex(await s.snapshot());
    registryMs += performance.now() - t1;
    readMs += t1 - t0;
    for (;;) {
      const ta = performance.now();
      const page = await reader.next();
      const tb = performance.now();
      readMs += tb - ta;
      if (page === null) break;
      if (index === null) {
        index = buildAttributionIndex(await s.snapshot());
        registryMs += performance.now() - tb;
      }
      const tc = performance.now();
      const answers = answersFor(index, page);
      const td = performance.now();
      engineMs += td - tc;
      attributed += answers.attributed;
      considered += page.length;
      const w = await s.write(answers.writes);
      writeMs += performance.now() - td;
      changed += w.changed;
      written += w.written;
    }
    sessionEnd = performance.now();
    return { registryRev: s.rev, considered, attributed, unattributed: considered - attributed, changed, written, registryMs, readMs, engineMs, writeMs };
  });
  const ended = performance.now();
  const ms = Math.round;
  // What the session did after the last page (the queued COPYs finishing, the staged rows applied, COMMIT) is writing.
  return {
    registryRev: r.registryRev, considered: r.considered, attributed: r.attributed, unattributed: r.unattributed, changed: r.changed, written: r.written,
    ms: ms(ended - started),
    phases: { registryMs: ms(r.registryMs), readMs: ms(r.readMs), engineMs: ms(r.engineMs), writeMs: ms(r.writeMs + ended - sessionEnd) },
  };
}

/** What `tocsin whois` was told on its command line (undefined: not given, so the stored fact is used). */
export interface WhoisGiven {
  readonly ip: string;
  readonly asn?: number;
  readonly hostname?: string;
  readonly sans?: readonly string[];
  readonly ptr?: readonly string[];
}

export interface AddressWhoisAnswer extends WhoisAnswer {
  /** The facts the answer was computed from (flags over stored facts). */
  readonly facts: ExposureFacts;
  /** Whether stored observations of the address were found (their facts fill what the flags did not say). */
  readonly observed: boolean;
  /** The stored answer (null: never refreshed) and the last owner changes, newest first. */
  readonly stored: StoredAttribution | null;
  readonly changes: readonly OwnerChange[];
}

/** The address in the form the stores key it by (IPv4-mapped IPv6 as IPv4, RFC 5952), or null. */
export function canonicalAddress(ip: string): string | null {
  const p = parseIp(ip.trim());
  return p === null ? null : formatIp(canonicalIp(p));
}

/**
 * `tocsin whois IP` over the database: the registry from the attribution store (overrides and prefix table
 * included), the address's stored facts (feed ASN and hostname, the Host/SNI our scan used, certificate names)
 * where the flags do not say otherwise, the stored answer and its last owner changes.
 */
export async function whoisAddress(db: Kysely<DbSchema>, given: WhoisGiven): Promise<AddressWhoisAnswer> {
  const ip = canonicalAddress(given.ip);
  if (ip === null) throw new TocsinError('TOCSIN_ARG_INVALID', `${JSON.stringify(sanitiseText(given.ip, { max: 60 }))} is not an IPv4 or IPv6 address`);
  const store = createAttributionStore(db);
  const observed = await store.factsOf(ip);
  const known = observed?.facts;
  const facts: ExposureFacts = {
    ip,
    asn: given.asn ?? known?.asn ?? null,
    feedHostname: given.hostname ?? known?.feedHostname ?? null,
    requestHost: known?.requestHost ?? null,
    certificate: given.sans !== undefined && given.sans.length > 0 ? { sans: given.sans } : (known?.certificate ?? null),
    ptr: given.ptr ?? [],
  };
  const answer = await whois(store, facts);
  return { ...answer, facts, observed: observed !== null, stored: await store.stored(ip), changes: await store.changes(ip, 5) };
}

/** Where a review item came from, and what the analyst sees. */
export type { ReviewRow } from '../platform/db/attribution-store.js';

/** `tocsin attribution review`: refreshes, then streams the unattributed and ambiguous addresses. */
export async function reviewQueue(db: Kysely<DbSchema>, opts: { readonly limit?: number | null; readonly pageSize?: number } = {}): Promise<{ summary: RefreshSummary; rows: AsyncGenerator<ReviewRow> }> {
  const summary = await refreshAttributions(db);
  // pageSize: addresses per keyset page the store reads (its default 1,000 unless a caller says otherwise).
  return { summary, rows: createAttributionStore(db).review(opts.limit ?? null, ...(opts.pageSize === undefined ? [] : [opts.pageSize])) };
}

/**
 * An override target as the database stores it: an address becomes its /32 or /128; a CIDR must have no host
 * bits set (it is never silently widened, as with scan targets); IPv4-mapped IPv6 is read as IPv4.
 */
export function overrideTarget(raw: string): string {
  const s = raw.trim();
  const bad = (why: string): TocsinError => new TocsinError('TOCSIN_ARG_INVALID', `${JSON.stringify(sanitiseText(s, { max: 60 }))} ${why}`);
  if (!s.includes('/')) {
    const ip = canonicalAddress(s);
    if (ip === null) throw bad('is not an address or a CIDR');
    return `${ip}/${ip.includes(':') ? 128 : 32}`;
  }
  const c = parseCidr(s);
  if (typeof c === 'string') throw bad(c);
  const first = canonicalIp(c.family === 4 ? { family: 4, value: c.first } : { family: 6, value: c.first });
  const mapped = c.family === 6 && first.family === 4;
  const prefix = mapped ? c.prefix - 96 : c.prefix;
  if (mapped && prefix < 0) throw bad('mixes IPv4-mapped and other IPv6 addresses');
  const text = `${formatIp(first)}/${prefix}`;
  const addr = s.slice(0, s.indexOf('/'));
  const given = canonicalAddress(addr);
  if (given !== null && given !== formatIp(first)) throw bad(`has host bits set: the network is ${text}`);
  return text;
}

export interface AssignResult {
  readonly override: OverrideRow;
  readonly refresh: RefreshSummary;
  /** The stored answer of the address (null for a network target). */
  readonly attribution: StoredAttribution | null;
}

/**
 * `tocsin attribution assign`: a manual override (beats every other rule; kept across constituency re-imports,
 * which never touch this table), then a refresh so the stored answers show it.
 * @throws TOCSIN_ORG_NOT_FOUND when no organisation has that name.
 */
export async function assignAddress(db: Kysely<DbSchema>, a: { readonly target: string; readonly org: string; readonly note?: string | null; readonly who: string }): Promise<AssignResult> {
  const target = overrideTarget(a.target);
  const store = createAttributionStore(db);
  const org = await store.orgId(a.org);
  if (org === null) throw new TocsinError('TOCSIN_ORG_NOT_FOUND', `no organisation named ${JSON.stringify(sanitiseText(a.org, { max: 200 }))}`);
  const override = await store.assign(target, org.id, a.note ?? null, a.who);
  const refresh = await refreshAttributions(db);
  const single = /\/(32|128)$/.test(target) ? target.slice(0, target.lastIndexOf('/')) : null;
  return { override, refresh, attribution: single === null ? null : await store.stored(single) };
}

/** `tocsin attribution unassign`: removes the override of exactly that target, then refreshes. */
export async function unassignAddress(db: Kysely<DbSchema>, rawTarget: string): Promise<{ target: string; refresh: RefreshSummary }> {
  const target = overrideTarget(rawTarget);
  if (!(await createAttributionStore(db).unassign(target))) {
    throw new TocsinError('TOCSIN_ORG_ENTRY_NOT_FOUND', `no manual assignment of ${target} (tocsin attribution assign makes one)`);
  }
  return { target, refresh: await refreshAttributions(db) };
}

/** One line of a prefix-to-ASN table: a row, nothing (blank or comment), or why it is not one. */
export type PrefixLine = { readonly prefix: string; readonly asn: number } | { readonly error: string } | null;

/**
 * Reads `PREFIX ASN`, `PREFIX,ASN` or pyasn's `PREFIX<TAB>ASN` (`AS64500` allowed); `#` starts a comment, and
 * pyasn's `;` header lines are comments too. The prefix must be a CIDR without host bits set.
 */
export function parsePrefixLine(line: string): PrefixLine {
  const text = line.replace(/#.*$/, '').trim();
  if (text === '' || text.startsWith(';')) return null;
  const parts = text.split(/\s*,\s*|\s+/);
  if (parts.length !== 2) return { error: 'expected "PREFIX ASN" (or PREFIX,ASN or PREFIX<tab>ASN)' };
  const [p = '', a = ''] = parts;
  const m = /^(?:AS)?(\d{1,10})$/i.exec(a);
  const asn = m === null ? Number.NaN : Number(m[1]);
  if (!(asn >= 0 && asn <= 0xffffffff)) return { error: `${JSON.stringify(sanitiseText(a, { max: 30 }))} is not an AS number (0-4294967295)` };
  if (!p.includes('/')) return { error: `${JSON.stringify(sanitiseText(p, { max: 60 }))} is not a CIDR` };
  try {
    return { prefix: overrideTarget(p), asn };
  } catch (e) {
    return { error: e instanceof TocsinError ? e.message : String(e) };
  }
}

export interface PrefixImportResult {
  readonly source: string;
  readonly rows: number;
  readonly bad: readonly { readonly line: number; readonly error: string }[];
  readonly added: number;
  readonly changed: number;
  readonly removed: number;
}

/**
 * `tocsin attribution prefixes import`: replaces the rows of `source` with the table's, in one transaction. Bad
 * lines are reported with their number and skipped; a table with no good line is refused (it would empty the source).
 */
export async function importPrefixTable(db: Kysely<DbSchema>, lines: AsyncIterable<string> | Iterable<string>, source: string): Promise<PrefixImportResult> {
  if (!/^[a-z0-9][a-z0-9_.-]{0,63}$/i.test(source)) {
    throw new TocsinError('TOCSIN_ARG_INVALID', `--source must be a short name (a-z, 0-9, _ . -), got ${JSON.stringify(sanitiseText(source, { max: 70 }))}`);
  }
  const rows: { prefix: string; asn: number }[] = [];
  const bad: { line: number; error: string }[] = [];
  let n = 0;
  for await (const line of lines) {
    n++;
    const r = parsePrefixLine(line);
    if (r === null) continue;
    if ('error' in r) bad.push({ line: n, error: r.error });
    else rows.push(r);
  }
  if (rows.length === 0) {
    throw new TocsinError('TOCSIN_INPUT_UNREADABLE', `no prefix-to-ASN line could be read (${bad.length} bad line(s)); the rows of source ${source} are left as they are`);
  }
  const applied = await createAttributionStore(db).replacePrefixes(source, rows);
  return { source, rows: rows.length, bad, ...applied };
}
