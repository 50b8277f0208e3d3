/**
 * The analyst dashboard (issue 10 §3): the national picture, the patch curve, campaigns with their delivery states
 * and burn-down, the host list and one host's drill-down. The web routes and pages call these functions (a page
 * renders from the same call the API answers from, so their numbers cannot differ).
 *
 * READS ONLY. Nothing here refreshes the attribution or folds findings: those are writes that can take seconds over
 * a million findings, and a dashboard is read hundreds of times a second (the §8 target: p99 < 50 ms at 200
 * requests/s over 1,000,000 findings and 10,000 organisations). The aggregates read what the last fold and refresh
 * stored, and are CACHED in this process (`DashboardCache`):
 * - keyed by a data version (platform/db/dashboard-store.ts `dataVersion`: newest finding, finding event, registry
 *   revision, attribution watermark, registry audit row, outbox message; one round trip of index lookups),
 *   checked at most once per `checkEveryMs` (default 1 s), so 200 requests/s cost one tiny query per second;
 * - a changed version recomputes once (single flight: concurrent readers share the one computation); while it runs,
 *   readers get the previous answer if it is younger than `staleMs` (default 120 s), so a fold that keeps changing
 *   the data never puts the aggregate in front of a request (measured over 1,000,000 findings and 10,000
 *   organisations: 20-25 s to compute on the shared 2-core CI machine at load 15, i.e. a few seconds on an idle one;
 *   a cached read: p99 0.06 ms); an older answer is never served: readers wait (only the first read after start or
 *   after a long idle period);
 * - an answer older than `maxAgeMs` (default 30 s), or than 20 times its last computation took when that is longer,
 *   is recomputed (in the background, as above) even when the version did not move: ids are handed out at insert
 *   time, so a slow writer can commit below the newest id, and the version does not see everything (a sector
 *   renamed without an audit row);
 * - `tocsin serve` warms the cache as it starts listening (`warmDashboard`), so the first analyst does not wait for
 *   the whole computation, and one who arrives before it finished shares it (never a second computation).
 * We chose a version key over a plain TTL: an analyst who folds a scan sees it on the next page load, not after a
 * TTL, and an idle system recomputes nothing. Every answer says when it was computed (`computedAt`).
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { Kysely } from 'kysely';
import { inspectConfig } from '../core/config.js';
import { TocsinError } from '../core/errors.js';
import { parseMailFrom } from '../core/smtp-url.js';
import { sanitiseText } from '../core/text.js';
import { COMPROMISED } from '../findings/index.js';
import {
  UNATTRIBUTED, dataVersion, hostDetailRows, hostRows, orgIdOf, pictureRows,
  type HostQuery, type HostRow, type PictureCounts,
} from '../platform/db/dashboard-store.js';
import type { DbSchema, Json } from '../platform/db/schema.js';
import { GROUP_BY, dayOf, parseDay, type DailyPoint, type GroupBy, type TimeToPatch } from '../stats/index.js';
import type { CampaignListRow } from '../platform/db/campaign-store.js';
import { campaignStatus, listCampaigns, listCampaignsAfter, previewCampaign, type RenderContext, type StatusRecord } from './campaigns.js';
import { reportSubject } from './report.js';
import { computeStats, renderStatsChart, type CampaignBurndown, type StatsReport } from './stats.js';

type Db = Kysely<DbSchema>;

export type { PictureCounts };
export { UNATTRIBUTED };

function shown(text: string, max = 60): string {
  return JSON.stringify(sanitiseText(text, { max }));
}

// ---------------------------------------------------------------------------------------------------------------
// the cache

export interface DashboardCacheOptions {
  /** Check the data version at most this often (default 1000 ms; 0 = on every read). */
  readonly checkEveryMs?: number;
  /** While a changed version is recomputed, serve the previous answer if it is at most this old (default 120000 ms). */
  readonly staleMs?: number;
  /** Recompute an answer older than this even when the version did not move (default 30000 ms)... */
  readonly maxAgeMs?: number;
  /** ...or older than this many times its last computation took, when that is longer (default 20; see `get`). */
  readonly maxAgeFactor?: number;
  /** Answers kept (different patch-curve ranges, campaigns); the least recently computed goes first (default 64). */
  readonly maxEntries?: number;
  readonly now?: () => number;
}

interface Entry {
  version: string;
  at: number;
  value: unknown;
  has: boolean;
  /** How long the stored answer took to compute (ms). */
  took: number;
  pending: Promise<unknown> | null;
}

/** Answers by key, each valid for one data version (see the header comment). */
export class DashboardCache {
  private readonly entries = new Map<string, Entry>();
  private version: { value: string; checkedAt: number } | null = null;
  private versionPending: Promise<string> | null = null;
  private readonly checkEveryMs: number;
  private readonly staleMs: number;
  private readonly maxAgeMs: number;
  private readonly maxAgeFactor: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(o: DashboardCacheOptions = {}) {
    this.checkEveryMs = o.checkEveryMs ?? 1000;
    this.staleMs = o.staleMs ?? 120_000;
    this.maxAgeMs = o.maxAgeMs ?? 30_000;
    this.maxAgeFactor = o.maxAgeFactor ?? 20;
    this.maxEntries = o.maxEntries ?? 64;
    this.now = o.now ?? Date.now;
  }

  private async currentVersion(db: Db): Promise<string> {
    const t = this.now();
    if (this.version !== null && t - this.version.checkedAt < this.checkEveryMs) return this.version.value;
    this.versionPending ??= dataVersion(db).then((v) => {
      this.version = { value: v, checkedAt: this.now() };
      return v;
    }).finally(() => {
      this.versionPending = null;
    });
    return this.versionPending;
  }

  /** The answer for `key` at the current data version; `compute` runs at most once at a time per key. */
  async get<T>(db: Db, key: string, compute: () => Promise<T>): Promise<{ value: T; computedAt: Date }> {
    const version = await this.currentVersion(db);
    let e = this.entries.get(key);
    if (e === undefined) {
      if (this.entries.size >= this.maxEntries) {
        const oldest = [...this.entries.entries()].filter(([, x]) => x.pending === null).sort((a, b) => a[1].at - b[1].at)[0];
        if (oldest !== undefined) this.entries.delete(oldest[0]);
      }
      e = { version: '', at: 0, value: undefined, has: false, took: 0, pending: null };
      this.entries.set(key, e);
    }
    const entry = e;
    const age = this.now() - entry.at;
    // The age limit only catches what the version misses, so it must not cost more than a small share of the
    // database: the national picture over a million findings takes seconds (tens on a loaded machine), and a 30 s
    // limit alone would keep recomputing it a third of the time under steady reading. With the default factor 20
    // an unchanged version costs at most ~5% of one computation's resources.
    const maxAge = Math.max(this.maxAgeMs, this.maxAgeFactor * entry.took);
    if (entry.has && entry.version === version && age < maxAge) return { value: entry.value as T, computedAt: new Date(entry.at) };
    const start = (): Promise<unknown> => {
      const began = this.now();
      entry.pending ??= compute().then((v) => {
        entry.value = v;
        entry.has = true;
        entry.version = version;
        entry.at = this.now();
        entry.took = entry.at - began;
        return v;
      }).finally(() => {
        entry.pending = null;
      });
      return entry.pending;
    };
    if (entry.has && age < this.staleMs) {
      // Stale while revalidating: the recomputation's failure is seen by the next reader that waits for it.
      start().catch(() => undefined);
      return { value: entry.value as T, computedAt: new Date(entry.at) };
    }
    const value = (await start()) as T;
    return { value, computedAt: new Date(entry.at) };
  }
}

/** One cache per database handle (the app's, a test's): answers of one database are never served for another. */
const CACHES = new WeakMap<Db, DashboardCache>();

export function dashboardCache(db: Db): DashboardCache {
  let c = CACHES.get(db);
  if (c === undefined) {
    c = new DashboardCache();
    CACHES.set(db, c);
  }
  return c;
}

export interface ReadOptions {
  /** Default: the database's shared cache (dashboardCache). */
  readonly cache?: DashboardCache;
}

// ---------------------------------------------------------------------------------------------------------------
// the national picture

export interface GroupLine extends PictureCounts {
  readonly group: string;
  readonly headline: boolean;
  readonly cves: readonly string[];
}

export interface SectorLine extends PictureCounts {
  readonly sector: string;
}

export interface NationalSummary {
  /** When the numbers were computed (they are cached; see the module comment). */
  readonly computedAt: string;
  /** The product the CVE groups are of. */
  readonly product: string;
  /** What each number means, in words (shown with the numbers). */
  readonly definitions: Readonly<Record<keyof PictureCounts, string>>;
  readonly totals: PictureCounts;
  readonly byGroup: readonly GroupLine[];
  readonly bySector: readonly SectorLine[];
}

export const DEFINITIONS: Readonly<Record<keyof PictureCounts, string>> = {
  hostsExposed: 'addresses with an open finding (vulnerable or indeterminate)',
  hostsVulnerable: 'addresses with an open finding judged vulnerable',
  hostsCompromised: `addresses with open compromise evidence (finding \`${COMPROMISED}\`)`,
  organisationsExposed: 'organisations owning an exposed address',
  findingsOpen: 'open findings (address, port, CVE)',
  findingsPatched: 'findings closed because a fixed build was seen',
  findingsNotified: 'findings a campaign warned about (a message accepted by the relay)',
};

/** The national picture: totals, per CVE group of the product (headline groups first), per sector. Cached. */
export async function nationalSummary(db: Db, o: ReadOptions = {}): Promise<NationalSummary> {
  const cache = o.cache ?? dashboardCache(db);
  const { value, computedAt } = await cache.get(db, 'summary', async () => {
    const subject = reportSubject();
    const groups = subject.groups.groups;
    const rows = await pictureRows(db, groups.map((g) => ({ name: g.name, cves: g.cves })));
    return {
      product: subject.id,
      totals: rows.totals,
      byGroup: rows.byGroup.map((r, i) => ({ ...r, headline: groups[i]?.headline ?? false, cves: [...(groups[i]?.cves ?? [])] })),
      bySector: rows.bySector,
    };
  });
  return { computedAt: computedAt.toISOString(), definitions: DEFINITIONS, ...value };
}

// ---------------------------------------------------------------------------------------------------------------
// the patch curve

export interface CurveQuery {
  readonly from?: string;
  readonly to?: string;
  readonly by?: string;
}

function checkedCurve(q: CurveQuery): { from: string | null; to: string | null; by: GroupBy | null } {
  const day = (name: string, v: string | undefined): string | null => {
    if (v === undefined || v === '') return null;
    const d = parseDay(v);
    if (d === null) throw new TocsinError('TOCSIN_ARG_INVALID', `${name} must be a day like 2026-03-01, got ${shown(v)}`);
    return d;
  };
  const by = q.by === undefined || q.by === '' || q.by === 'all' ? null : GROUP_BY.find((g) => g === q.by);
  if (by === undefined) throw new TocsinError('TOCSIN_ARG_INVALID', `by must be one of all, ${GROUP_BY.join(', ')}, got ${shown(q.by ?? '')}`);
  return { from: day('from', q.from), to: day('to', q.to), by };
}

export interface PatchCurve {
  readonly computedAt: string;
  readonly from: string;
  readonly to: string;
  readonly by: GroupBy | null;
  readonly series: readonly DailyPoint[];
  readonly timeToPatch: readonly TimeToPatch[];
}

async function curveReport(db: Db, q: CurveQuery, cache: DashboardCache): Promise<{ value: StatsReport; computedAt: Date }> {
  const c = checkedCurve(q);
  // Today is part of the key: the default range ends today, so a new day is a new answer.
  const key = `curve:${c.from ?? ''}:${c.to ?? dayOf(new Date())}:${c.by ?? 'all'}`;
  return cache.get(db, key, () => computeStats(db, { by: c.by, from: c.from, to: c.to }));
}

/** The daily series (exposed, notified, acknowledged, patched, compromised) and time to patch. Cached. */
export async function patchCurve(db: Db, q: CurveQuery = {}, o: ReadOptions = {}): Promise<PatchCurve> {
  const { value: r, computedAt } = await curveReport(db, q, o.cache ?? dashboardCache(db));
  return { computedAt: computedAt.toISOString(), from: r.from, to: r.to, by: r.by, series: r.series, timeToPatch: r.timeToPatch };
}

/** The patch curve as SVG (services/stats.ts renderStatsChart). Cached with its report. */
export async function patchCurveSvg(db: Db, q: CurveQuery = {}, o: ReadOptions = {}): Promise<string> {
  const cache = o.cache ?? dashboardCache(db);
  const c = checkedCurve(q);
  const key = `svg:${c.from ?? ''}:${c.to ?? dayOf(new Date())}:${c.by ?? 'all'}`;
  const { value } = await cache.get(db, key, async () => {
    const { value: r } = await curveReport(db, q, cache);
    return String(await renderStatsChart(r, 'svg'));
  });
  return value;
}

/**
 * Computes the answers a dashboard's first load asks for (the national picture, the default patch curve and its
 * chart) into the database's shared cache, one after the other (not at once: each is a pass over every finding).
 * `tocsin serve` starts this in the background as it starts listening: a reader arriving before it finished waits
 * for the same in-flight computation (the cache's single flight), never starts a second one.
 */
export async function warmDashboard(db: Db, o: ReadOptions = {}): Promise<void> {
  await nationalSummary(db, o);
  await patchCurveSvg(db, {}, o);
}

// ---------------------------------------------------------------------------------------------------------------
// campaigns

export interface CampaignLine {
  readonly id: number;
  readonly name: string;
  readonly state: string;
  readonly template: string;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly approvedAt: string | null;
  /** Messages per delivery state (queued, sent, acknowledged, bounced, suppressed, ...). */
  readonly deliveries: Readonly<Record<string, number>>;
  readonly messages: number;
}

/** Every campaign with its messages counted per delivery state (not cached: one grouped count over the outbox). */
export async function campaignsOverview(db: Db): Promise<CampaignLine[]> {
  return (await listCampaigns(db)).map(campaignLine);
}

function campaignLine(c: CampaignListRow): CampaignLine {
  return {
    id: c.id, name: c.name, state: c.state, template: c.template, createdAt: c.createdAt.toISOString(), createdBy: c.createdBy,
    approvedAt: c.approvedAt?.toISOString() ?? null, deliveries: c.counts, messages: Object.values(c.counts).reduce((a, b) => a + b, 0),
  };
}

/** Campaigns read per keyset page by a download. */
export const CAMPAIGN_EXPORT_PAGE = 500;

/** Every campaign as campaignsOverview lists it (id order), read lazily in keyset pages (CSV/JSONL downloads). Staff only. */
export async function* campaignRecords(db: Db, pageSize = CAMPAIGN_EXPORT_PAGE): AsyncGenerator<CampaignLine> {
  let after = 0;
  for (;;) {
    const rows = await listCampaignsAfter(db, after, pageSize);
    for (const r of rows) yield campaignLine(r);
    const last = rows[rows.length - 1];
    if (rows.length < pageSize || last === undefined) return;
    after = last.id;
  }
}

export interface CampaignView {
  readonly campaign: CampaignLine;
  readonly organisations: readonly StatusRecord[];
  readonly burndown: CampaignBurndown | null;
  readonly burndownComputedAt: string;
}

/** One campaign: per organisation its delivery state, and the burn-down of its findings (cached). */
export async function campaignView(db: Db, id: number, o: ReadOptions = {}): Promise<CampaignView> {
  const { campaign, records } = await campaignStatus(db, id);
  const deliveries: Record<string, number> = {};
  for (const r of records) deliveries[r.state] = (deliveries[r.state] ?? 0) + 1;
  const { value: stats, computedAt } = await (o.cache ?? dashboardCache(db)).get(db, `campaign:${id}:${dayOf(new Date())}`, () => computeStats(db, { campaignId: id }));
  return {
    campaign: {
      id: campaign.id, name: campaign.name, state: campaign.state, template: campaign.template, createdAt: campaign.createdAt.toISOString(),
      createdBy: campaign.createdBy, approvedAt: campaign.approvedAt?.toISOString() ?? null, deliveries, messages: records.length,
    },
    organisations: records,
    burndown: stats.campaign,
    burndownComputedAt: computedAt.toISOString(),
  };
}

/** The campaign's burn-down chart as SVG (cached). */
export async function campaignBurndownSvg(db: Db, id: number, o: ReadOptions = {}): Promise<string> {
  const cache = o.cache ?? dashboardCache(db);
  const day = dayOf(new Date());
  const { value } = await cache.get(db, `campaign-svg:${id}:${day}`, async () => {
    const { value: r } = await cache.get(db, `campaign:${id}:${day}`, () => computeStats(db, { campaignId: id }));
    return String(await renderStatsChart(r, 'svg'));
  });
  return value;
}

/**
 * Signs the acknowledgement links of web previews: a key made per process and never stored, so a link copied out of
 * a preview in a browser does not work (only a sent message's link acknowledges for the organisation).
 */
const PREVIEW_SECRET = randomBytes(32);

function previewContext(): RenderContext {
  const { config } = inspectConfig(process.env);
  const from = config.mailFrom === null ? null : parseMailFrom(config.mailFrom).from;
  return {
    fromAddress: from?.address ?? 'tocsin@tocsin.invalid', contactUrl: config.contactUrl, ackSecret: PREVIEW_SECRET,
    ackUrlBase: 'https://preview.tocsin.invalid/ack/',
  };
}

export interface CampaignPreview {
  readonly org: string;
  readonly state: string;
  readonly reason: string | null;
  readonly to: readonly string[];
  readonly subject: string | null;
  readonly text: string | null;
  /** The HTML part as text: show it escaped (it carries hostnames and organisation names). */
  readonly html: string | null;
  /** All of it as one plain text (recipients, subject, text part, HTML source), for a page to show as text. */
  readonly message: string;
}

/** One organisation's message as it would be sent now (nothing is stored or sent). */
export async function campaignPreview(db: Db, id: number, org: string): Promise<CampaignPreview> {
  const [item] = await previewCampaign(db, id, previewContext(), org.trim());
  if (item === undefined) throw new TocsinError('TOCSIN_CAMPAIGN_NOT_FOUND', `campaign ${id} has no message for ${shown(org)}`);
  const m = item.message;
  const message = m === null
    ? `${item.org}: ${item.state}${item.reason === null ? '' : ` (${item.reason})`}: no message would be sent`
    : [`To: ${m.to.join(', ')}`, `Subject: ${m.subject}`, '', m.text, '', '----- HTML part (source) -----', m.html].join('\n');
  return { org: item.org, state: item.state, reason: item.reason, to: m?.to ?? [], subject: m?.subject ?? null, text: m?.text ?? null, html: m?.html ?? null, message };
}

// ---------------------------------------------------------------------------------------------------------------
// hosts

export interface HostQueryInput {
  readonly cursor?: string;
  readonly limit?: number;
  readonly org?: string;
  readonly sector?: string;
  readonly cve?: string;
  /** An address, a CIDR, or the start of an address (192.0.2.). */
  readonly q?: string;
}

export interface HostLine {
  readonly ip: string;
  readonly org: string | null;
  readonly orgId: number | null;
  readonly sector: string | null;
  readonly rule: string | null;
  readonly hostname: string | null;
  readonly product: string | null;
  readonly build: string | null;
  readonly lastSeen: string | null;
  readonly openCves: readonly string[];
  readonly patched: number;
  readonly compromised: boolean;
}

export interface HostPage {
  readonly items: readonly HostLine[];
  readonly nextCursor: string | null;
  /** The organisation the listing was limited to (for the audit row), else null. */
  readonly orgScope: number | null;
}

const CVE_ID = /^CVE-\d{4}-\d{4,7}$/i;

/** `q` as an inet to match with <<=: an address, a CIDR, or a dotted IPv4 prefix (192.0.2. → 192.0.2.0/24). */
function withinOf(q: string): string {
  const t = q.trim();
  if (isIP(t) !== 0) return t;
  const cidr = /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(t);
  if (cidr !== null && isIP(cidr[1] ?? '') !== 0) {
    const bits = Number(cidr[2]);
    if (bits <= (isIP(cidr[1] ?? '') === 4 ? 32 : 128)) return t;
  }
  const prefix = /^(\d{1,3})(?:\.(\d{1,3}))?(?:\.(\d{1,3}))?\.?$/.exec(t);
  if (prefix !== null) {
    const parts = [prefix[1], prefix[2], prefix[3]].filter((p): p is string => p !== undefined).map(Number);
    if (parts.every((p) => p <= 255)) return `${[...parts, ...[0, 0, 0, 0]].slice(0, 4).join('.')}/${parts.length * 8}`;
  }
  throw new TocsinError('TOCSIN_ARG_INVALID', `q must be an address, a CIDR or the start of an IPv4 address (192.0.2.), got ${shown(q)}`);
}

function encodeHostCursor(ip: string): string {
  return Buffer.from(ip, 'utf8').toString('base64url');
}

function decodeHostCursor(c: string): string {
  const ip = Buffer.from(c, 'base64url').toString('utf8');
  if (isIP(ip) === 0) throw new TocsinError('TOCSIN_ARG_INVALID', 'cursor is not one this API returned');
  return ip;
}

function hostLine(r: HostRow): HostLine {
  return {
    ip: r.ip, org: r.org, orgId: r.org_id, sector: r.sector, rule: r.rule, hostname: r.hostname, product: r.product, build: r.build,
    lastSeen: r.last_seen?.toISOString() ?? null, openCves: r.open_cves ?? [], patched: r.patched, compromised: r.compromised,
  };
}

type HostFilter = Omit<HostQuery, 'after' | 'limit'>;

/** The query's filters checked and resolved (the organisation by name): the same for a page and for a download. */
async function hostFilter(db: Db, q: HostQueryInput): Promise<{ filter: HostFilter; orgId: number | undefined }> {
  let orgId: number | undefined;
  const org = q.org?.trim();
  if (org !== undefined && org !== '') {
    const id = await orgIdOf(db, org);
    if (id === null) throw new TocsinError('TOCSIN_ORG_NOT_FOUND', `no organisation named ${shown(org)}`);
    orgId = id;
  }
  const cve = q.cve?.trim();
  if (cve !== undefined && cve !== '' && !CVE_ID.test(cve)) throw new TocsinError('TOCSIN_ARG_INVALID', `cve must be a CVE id such as CVE-2021-26855, got ${shown(cve)}`);
  const sector = q.sector?.trim();
  const within = q.q === undefined || q.q.trim() === '' ? undefined : withinOf(q.q);
  const filter: HostFilter = {
    ...(orgId === undefined ? {} : { orgId }),
    ...(sector === undefined || sector === '' ? {} : { sector }),
    ...(cve === undefined || cve === '' ? {} : { cve: cve.toUpperCase() }),
    ...(within === undefined ? {} : { within }),
  };
  return { filter, orgId };
}

/** One page of hosts in address order, filtered on the server (never cached: pages are cheap index walks). */
export async function hostPage(db: Db, q: HostQueryInput): Promise<HostPage> {
  const limit = Math.min(Math.max(Math.floor(q.limit ?? 50), 1), 500);
  const { filter, orgId } = await hostFilter(db, q);
  const rows = await hostRows(db, { ...filter, after: q.cursor === undefined || q.cursor === '' ? null : decodeHostCursor(q.cursor), limit: limit + 1 });
  const items = rows.slice(0, limit).map(hostLine);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit && last !== undefined ? encodeHostCursor(last.ip) : null, orgScope: orgId ?? null };
}

/** Hosts read per keyset page by a download. */
export const HOST_EXPORT_PAGE = 1000;

/**
 * Every host matching the filters (cursor and limit ignored), in address order, as a lazy stream: keyset pages of
 * HOST_EXPORT_PAGE read as the stream is consumed (CSV/JSONL downloads, src/web/export-format.ts). The filters are
 * checked before the first byte, so a bad one is still a 400. Staff only (the caller checks the role).
 */
export async function hostRecords(db: Db, q: HostQueryInput, pageSize = HOST_EXPORT_PAGE): Promise<{ records: AsyncIterable<HostLine>; orgScope: number | null }> {
  const { filter, orgId } = await hostFilter(db, q);
  async function* walk(): AsyncGenerator<HostLine> {
    let after: string | null = null;
    for (;;) {
      const rows = await hostRows(db, { ...filter, after, limit: pageSize });
      for (const r of rows) yield hostLine(r);
      const last = rows[rows.length - 1];
      if (rows.length < pageSize || last === undefined) return;
      after = last.ip;
    }
  }
  return { records: walk(), orgScope: orgId ?? null };
}

export interface HostObservation {
  readonly id: number;
  /** `scan`, or `feed:<name>` for a feed's Exchange row. */
  readonly source: string;
  readonly scanId: number | null;
  readonly port: number;
  readonly hostname: string | null;
  readonly tls: boolean;
  readonly status: number | null;
  readonly seenAt: string;
  readonly product: string | null;
  readonly edition: string | null;
  readonly build: string | null;
  readonly buildPrecision: string | null;
  readonly cu: string | null;
  readonly su: string | null;
  /** The detectors' evidence: probe, URL, header or body excerpt (hostile text). */
  readonly evidence: Json;
  /** The latest assessment's verdicts (every other CVE of its knowledge-base revision is not vulnerable). */
  readonly verdict: { readonly kbRevision: string | null; readonly vulnerable: readonly string[]; readonly indeterminate: readonly string[]; readonly notes: Json } | null;
}

export interface HostFeedRowView {
  readonly id: number;
  readonly feed: string;
  readonly kind: string;
  readonly reportType: string;
  readonly reportDate: string;
  readonly port: number | null;
  readonly hostname: string | null;
  readonly seenAt: string | null;
  readonly tags: readonly string[];
  readonly reportedCves: readonly string[];
  readonly compromised: boolean;
  readonly product: string | null;
  readonly build: string | null;
  readonly file: string | null;
  readonly line: number;
  /** The feed's raw line (hostile text). */
  readonly raw: string;
}

export interface HostFindingView {
  readonly id: number;
  readonly port: number | null;
  readonly cve: string;
  readonly state: string;
  readonly closeReason: string | null;
  readonly verdict: string;
  readonly present: boolean;
  readonly org: string | null;
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly events: ReadonlyArray<{ readonly id: number; readonly kind: string; readonly at: string; readonly who: string; readonly observationId: number | null; readonly detail: Json | null }>;
}

export interface HostDetail {
  readonly ip: string;
  readonly attribution: {
    readonly org: string | null;
    readonly orgId: number | null;
    readonly sector: string | null;
    readonly rule: string | null;
    readonly confidence: number;
    readonly evidence: Json | null;
    readonly tie: boolean;
    readonly candidates: Json;
    readonly attributedAt: string;
    readonly changes: ReadonlyArray<{ readonly from: string | null; readonly to: string | null; readonly rule: string | null; readonly at: string }>;
  } | null;
  readonly observations: readonly HostObservation[];
  readonly feedRows: readonly HostFeedRowView[];
  readonly findings: readonly HostFindingView[];
  /** Each list holds at most this many rows (newest first). */
  readonly cap: number;
}

/** At most this many observations, feed rows, findings and owner changes per host answer. */
export const HOST_DETAIL_CAP = 200;

/** Everything stored about one address; TOCSIN_NOT_FOUND when nothing is. */
export async function hostDetail(db: Db, ipIn: string): Promise<HostDetail> {
  const ip = ipIn.trim();
  if (isIP(ip) === 0) throw new TocsinError('TOCSIN_ARG_INVALID', `not an IP address: ${shown(ipIn)}`);
  const r = await hostDetailRows(db, ip, HOST_DETAIL_CAP);
  if (r.observations.length === 0 && r.feedRows.length === 0 && r.findings.length === 0 && r.attribution === null) {
    throw new TocsinError('TOCSIN_NOT_FOUND', `nothing is stored about ${ip}`);
  }
  const events = new Map<number, HostFindingView['events'][number][]>();
  for (const e of r.events) {
    const list = events.get(e.finding_id) ?? [];
    list.push({ id: e.id, kind: e.kind, at: e.at.toISOString(), who: e.who, observationId: e.observation_id, detail: e.detail });
    events.set(e.finding_id, list);
  }
  const a = r.attribution;
  return {
    ip,
    attribution: a === null ? null : {
      org: a.org, orgId: a.org === null ? null : a.org_id, sector: a.sector, rule: a.org === null ? null : a.rule, confidence: a.confidence,
      evidence: a.evidence, tie: a.tie, candidates: a.candidates, attributedAt: a.attributed_at.toISOString(),
      changes: r.changes.map((c) => ({ from: c.from_org, to: c.to_org, rule: c.rule, at: c.at.toISOString() })),
    },
    observations: r.observations.map((o) => ({
      id: o.id, source: o.source, scanId: o.scan_id, port: o.port, hostname: o.hostname, tls: o.tls, status: o.status, seenAt: o.scanned_at.toISOString(),
      product: o.product, edition: o.edition, build: o.build, buildPrecision: o.build_precision, cu: o.cu, su: o.su, evidence: o.evidence,
      verdict: o.assessed_at === null ? null : { kbRevision: o.kb_revision, vulnerable: o.vulnerable ?? [], indeterminate: o.indeterminate ?? [], notes: o.notes ?? [] },
    })),
    feedRows: r.feedRows.map((f) => ({
      id: f.id, feed: f.feed, kind: f.kind, reportType: f.report_type, reportDate: f.report_date, port: f.port, hostname: f.hostname,
      seenAt: f.seen_at?.toISOString() ?? null, tags: f.tags, reportedCves: f.reported_cves, compromised: f.compromised, product: f.product,
      build: f.build, file: f.file, line: f.line, raw: f.raw,
    })),
    findings: r.findings.map((f) => ({
      id: f.id, port: f.port, cve: f.cve, state: f.state, closeReason: f.close_reason, verdict: f.verdict, present: f.present, org: f.org,
      firstSeen: f.first_seen.toISOString(), lastSeen: f.last_seen.toISOString(), events: events.get(f.id) ?? [],
    })),
    cap: HOST_DETAIL_CAP,
  };
}
