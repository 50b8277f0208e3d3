/**
 * The organisation portal's reads and acknowledgement (issue 10 §4): own exposures with their evidence, verdicts,
 * findings and what to do per CVE; the own CSV; own warnings and their acknowledgement; the forensics kit.
 *
 * Scope: the organisation comes from the caller (`portalOrg`): an organisation account always reads its own
 * (naming another is TOCSIN_FORBIDDEN before anything is read); staff name the organisation. Every read is then
 * filtered by that organisation IN THE QUERY (the exposure store by org, the rescan store's reads by org id).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TocsinError } from '../core/errors.js';
import { csvDocument, type CsvValue } from '../core/csv.js';
import { normalizeIp } from '../core/ip.js';
import { sanitiseText } from '../core/text.js';
import type { Json } from '../platform/db/schema.js';
import { acknowledgeMessage } from '../platform/db/campaign-store.js';
import { orgByName } from '../platform/db/exposure-store.js';
import { findingsOfOrg, latestEvidence, warningsOfOrg, type OrgFindingRow, type OrgWarningRow } from '../platform/db/rescan-store.js';
import { packageRoot } from '../platform/paths.js';
import { productById } from '../products/registry.js';
import { scopeOf, type AccountsDb, type Principal } from './accounts.js';
import { exposureFilter, listExposures, type ExposureRecord } from './exposures.js';

/** The one organisation a portal answer is about. */
export interface PortalOrg {
  readonly orgId: number;
  readonly org: string;
}

function shown(text: string): string {
  return JSON.stringify(sanitiseText(text, { max: 60 }));
}

/**
 * The organisation the caller reads: its own for an organisation account (another one named: TOCSIN_FORBIDDEN),
 * the named one for staff (TOCSIN_ARG_INVALID without a name, TOCSIN_ORG_NOT_FOUND for an unknown one).
 */
export async function portalOrg(db: AccountsDb, p: Principal, org?: string): Promise<PortalOrg> {
  const scope = scopeOf(p);
  if (scope.kind === 'org') {
    if (org !== undefined && org.trim().toLowerCase() !== scope.org.toLowerCase()) {
      throw new TocsinError('TOCSIN_FORBIDDEN', 'an organisation account sees only its own organisation');
    }
    return { orgId: scope.orgId, org: scope.org };
  }
  if (org === undefined || org.trim() === '') throw new TocsinError('TOCSIN_ARG_INVALID', 'staff name the organisation with ?org=NAME');
  const found = await orgByName(db, org.trim());
  if (found === null) throw new TocsinError('TOCSIN_ORG_NOT_FOUND', `no organisation named ${shown(org)} (see tocsin org list)`);
  return { orgId: found.id, org: found.name };
}

/** What to do about one CVE, from the product's own data (groups and their references). */
export interface Remediation {
  readonly cve: string;
  /** The CVE's group (e.g. its campaign name), null for a lone CVE. */
  readonly group: string | null;
  readonly action: string;
  readonly references: readonly string[];
}

/** One piece of evidence as shown (hostile text: escape it wherever it goes). */
export interface PortalEvidence {
  readonly detector: string;
  readonly where: string;
  readonly name: string | null;
  readonly excerpt: string;
  readonly url: string;
}

export interface PortalFinding {
  readonly cve: string;
  readonly state: 'open' | 'closed';
  readonly closeReason: string | null;
  readonly closedAt: string | null;
  readonly verdict: string;
  readonly firstSeen: string;
}

/** One own exposure (a published shape: field names are a contract). */
export interface PortalExposure {
  readonly ip: string;
  readonly port: number | null;
  readonly hostname: string | null;
  readonly sources: readonly string[];
  readonly product: string | null;
  readonly edition: string | null;
  readonly build: string | null;
  readonly buildPrecision: 'exact' | 'cu' | null;
  readonly vulnerable: readonly string[];
  readonly indeterminate: readonly string[];
  readonly reportedCves: readonly string[];
  readonly compromised: boolean;
  readonly firstSeen: string | null;
  readonly lastSeen: string | null;
  readonly findings: readonly PortalFinding[];
  readonly evidence: readonly PortalEvidence[];
  readonly remediation: readonly Remediation[];
}

/** At most this many services in one portal answer (an organisation with more uses the paged /api/exposures). */
export const PORTAL_MAX_EXPOSURES = 5000;

function evidenceOf(j: Json | undefined): PortalEvidence[] {
  if (!Array.isArray(j)) return [];
  const out: PortalEvidence[] = [];
  for (const e of j.slice(0, 20)) {
    if (typeof e !== 'object' || e === null || Array.isArray(e)) continue;
    const text = (k: string): string | null => (typeof e[k] === 'string' ? e[k] : null);
    out.push({ detector: text('detector') ?? '', where: text('where') ?? '', name: text('name'), excerpt: text('excerpt') ?? '', url: text('url') ?? '' });
  }
  return out;
}

/** Remediation per CVE from the product's CVE groups; the product's name, never a literal here. */
export function remediationFor(productId: string | null, cve: string, indeterminate: boolean): Remediation {
  const product = productId === null ? undefined : productById(productId);
  const name = product?.name ?? 'the product';
  let group: string | null = null;
  let references: readonly string[] = [];
  try {
    const g = product?.cveGroups().groups.find((x) => x.cves.includes(cve));
    if (g !== undefined) {
      group = g.name === cve ? null : g.name;
      references = g.references;
    }
  } catch {
    // The product's group data is unreadable: the action below still stands.
  }
  const action = indeterminate
    ? `The exact build of ${name} could not be read from outside; check that the server runs the latest cumulative update with the latest security update, which fix ${cve}, then ask for a verification rescan.`
    : `Install the latest cumulative update of ${name} with its latest security update (they fix ${cve}), check the server for compromise with the forensics kit, then ask for a verification rescan.`;
  const record = /^CVE-\d{4}-\d{4,7}$/.test(cve) ? [`https://www.cve.org/CVERecord?id=${cve}`] : [];
  return { cve, group, action, references: [...references, ...record] };
}

function iso(d: Date | null): string | null {
  return d === null ? null : d.toISOString();
}

function portalFinding(f: OrgFindingRow): PortalFinding {
  return { cve: f.cve, state: f.state, closeReason: f.closeReason, closedAt: iso(f.closedAt), verdict: f.verdict, firstSeen: f.firstSeen.toISOString() };
}

/**
 * The organisation's exposures (optionally of one address) with findings, evidence and remediation, in address
 * order. An address that is not the organisation's gives an empty list (the page answers 404 for it).
 */
export async function portalExposures(db: AccountsDb, o: PortalOrg, ip?: string): Promise<PortalExposure[]> {
  const only = ip === undefined ? undefined : normalizeIp(ip);
  if (only === null) throw new TocsinError('TOCSIN_ARG_INVALID', 'not an IP address');
  const { records } = await listExposures(db, exposureFilter({ org: o.org }));
  const items: ExposureRecord[] = [];
  for await (const r of records) {
    // Defence in depth: the store filtered by organisation; another one's record here is a bug, never shown.
    if (r.orgId !== o.orgId) throw new TocsinError('TOCSIN_INTERNAL', 'scoped exposure listing returned another organisation\'s record');
    if (only !== undefined && normalizeIp(r.ip) !== only) continue;
    items.push(r);
    if (items.length >= PORTAL_MAX_EXPOSURES) break;
  }
  return portalItems(db, items, await findingsOfOrg(db, o.orgId, only));
}

/** Exposure records with their findings (the organisation's, read by the caller in its scope), evidence and remediation. */
async function portalItems(db: AccountsDb, items: readonly ExposureRecord[], findings: readonly OrgFindingRow[]): Promise<PortalExposure[]> {
  const byKey = new Map<string, OrgFindingRow[]>();
  for (const f of findings) {
    const k = `${f.ip}|${String(f.port ?? -1)}`;
    byKey.set(k, [...(byKey.get(k) ?? []), f]);
  }
  const evidence = await latestEvidence(db, items.filter((r) => r.port !== null).map((r) => ({ ip: r.ip, port: r.port ?? 0 })));
  return items.map((r) => {
    const fs = [...(byKey.get(`${r.ip}|${String(r.port ?? -1)}`) ?? []), ...(byKey.get(`${r.ip}|-1`) ?? [])];
    const cves = [...new Set([...r.vulnerable, ...r.indeterminate, ...r.reportedCves, ...fs.filter((f) => f.state === 'open' && f.port !== null).map((f) => f.cve)])].sort();
    return {
      ip: r.ip, port: r.port, hostname: r.hostname, sources: r.sources, product: r.product, edition: r.edition, build: r.build,
      buildPrecision: r.buildPrecision, vulnerable: r.vulnerable, indeterminate: r.indeterminate, reportedCves: r.reportedCves,
      compromised: r.compromised, firstSeen: r.firstSeen, lastSeen: r.lastSeen,
      findings: fs.map(portalFinding),
      evidence: evidenceOf(evidence.get(`${r.ip}|${String(r.port ?? -1)}`)),
      remediation: cves.map((c) => remediationFor(r.product, c, !r.vulnerable.includes(c) && r.indeterminate.includes(c))),
    };
  });
}

/** Exposures enriched per chunk by a download (one findings and one evidence query per chunk). */
export const PORTAL_EXPORT_CHUNK = 500;

/**
 * Every own exposure as portalExposures shapes it (without its cap of PORTAL_MAX_EXPOSURES), in address order, as
 * a lazy stream: the exposure store reads keyset pages filtered by the organisation in the query, and each chunk
 * of PORTAL_EXPORT_CHUNK records gets its findings (by the organisation and the chunk's addresses) and evidence.
 */
export async function* portalExposureRecords(db: AccountsDb, o: PortalOrg, chunkSize = PORTAL_EXPORT_CHUNK): AsyncGenerator<PortalExposure> {
  const { records } = await listExposures(db, exposureFilter({ org: o.org }));
  let chunk: ExposureRecord[] = [];
  const flush = async (): Promise<PortalExposure[]> => {
    const ips = [...new Set(chunk.map((r) => r.ip))];
    const out = await portalItems(db, chunk, await findingsOfOrg(db, o.orgId, ips));
    chunk = [];
    return out;
  };
  for await (const r of records) {
    // Defence in depth, as in portalExposures.
    if (r.orgId !== o.orgId) throw new TocsinError('TOCSIN_INTERNAL', 'scoped exposure listing returned another organisation\'s record');
    chunk.push(r);
    if (chunk.length >= chunkSize) yield* await flush();
  }
  if (chunk.length > 0) yield* await flush();
}

export const PORTAL_CSV_COLUMNS = [
  'ip', 'port', 'hostname', 'product', 'edition', 'build', 'build_precision', 'vulnerable', 'indeterminate', 'reported_cves',
  'compromised', 'open_findings', 'first_seen', 'last_seen', 'sources',
] as const;

/** The own exposures as CSV (RFC 4180; every text cell guarded against spreadsheet formulas). Pure. */
export function portalCsv(items: readonly PortalExposure[]): string {
  return csvDocument(PORTAL_CSV_COLUMNS, items.map(portalCsvCells));
}

/** One exposure's cells under PORTAL_CSV_COLUMNS (the CSV route and the ?format=csv download). Pure. */
export function portalCsvCells(r: PortalExposure): CsvValue[] {
  return [
    r.ip, r.port, r.hostname, r.product, r.edition, r.build, r.buildPrecision, r.vulnerable.join(' '), r.indeterminate.join(' '),
    r.reportedCves.join(' '), r.compromised, r.findings.filter((f) => f.state === 'open').map((f) => f.cve).join(' '), r.firstSeen, r.lastSeen,
    r.sources.join(' '),
  ];
}

/** One warning sent to the organisation (a published shape). */
export interface PortalWarning {
  readonly id: number;
  readonly campaignId: number;
  readonly campaign: string;
  readonly ticket: string;
  readonly state: string;
  readonly sentAt: string | null;
  /** Sent, and no bounce came back for it. */
  readonly delivered: boolean;
  readonly bounced: boolean;
  readonly acknowledged: boolean;
  readonly acknowledgedAt: string | null;
  readonly exposures: number;
}

const SENT_STATES = new Set(['sent', 'acknowledged', 'uncertain']);

export async function portalWarnings(db: AccountsDb, o: PortalOrg, only?: { messageId?: number; campaignId?: number }): Promise<PortalWarning[]> {
  const rows = await warningsOfOrg(db, o.orgId, only);
  return rows.map(portalWarning);
}

function portalWarning(m: OrgWarningRow): PortalWarning {
  const bounced = m.state === 'bounced' || m.bounces > 0;
  return {
    id: m.id, campaignId: m.campaignId, campaign: m.campaign, ticket: m.ticket, state: m.state, sentAt: iso(m.sentAt),
    delivered: SENT_STATES.has(m.state) && !bounced, bounced, acknowledged: m.acknowledgedAt !== null, acknowledgedAt: iso(m.acknowledgedAt),
    exposures: Array.isArray(m.exposures) ? m.exposures.length : 0,
  };
}

/** Warnings read per keyset page by a download. */
export const WARNING_EXPORT_PAGE = 500;

/**
 * Every warning to the organisation (not only the newest 1,000 portalWarnings shows), newest campaign first, as a
 * lazy stream of keyset pages filtered by the organisation in the query (a download).
 */
export async function* portalWarningRecords(db: AccountsDb, o: PortalOrg, pageSize = WARNING_EXPORT_PAGE): AsyncGenerator<PortalWarning> {
  let after: { campaignId: number; id: number } | null = null;
  for (;;) {
    const rows = await warningsOfOrg(db, o.orgId, undefined, { after, limit: pageSize });
    for (const m of rows) yield portalWarning(m);
    const last = rows[rows.length - 1];
    if (rows.length < pageSize || last === undefined) return;
    after = { campaignId: last.campaignId, id: last.id };
  }
}

/**
 * Marks the organisation's own warning(s) acknowledged exactly as the e-mailed link does (acknowledgeMessage: the
 * first time is kept, the findings it named get an `acknowledged` event). Idempotent. A message or campaign that is
 * not the organisation's is TOCSIN_CAMPAIGN_NOT_FOUND, the same answer as one that does not exist.
 */
export async function acknowledgeWarnings(db: AccountsDb, o: PortalOrg, what: { messageId?: number; campaignId?: number }, now: Date = new Date()): Promise<{ warnings: PortalWarning[]; newlyAcknowledged: number }> {
  if ((what.messageId === undefined) === (what.campaignId === undefined)) throw new TocsinError('TOCSIN_ARG_INVALID', 'give exactly one of messageId and campaignId');
  const mine = await warningsOfOrg(db, o.orgId, what);
  if (mine.length === 0) throw new TocsinError('TOCSIN_CAMPAIGN_NOT_FOUND', 'no such warning to your organisation');
  let first = 0;
  for (const m of mine) if (await acknowledgeMessage(db, m.id, now)) first++;
  const after = await portalWarnings(db, o, what);
  const notSent = after.filter((w) => !w.acknowledged);
  if (notSent.length > 0 && first === 0) throw new TocsinError('TOCSIN_CAMPAIGN_STATE', `the warning is ${notSent[0]?.state ?? 'not sent'}: only a sent warning can be acknowledged`);
  return { warnings: after, newlyAcknowledged: first };
}

/** Where the self-contained forensics kit is (built by scripts/build-forensics-bundle.mjs), or TOCSIN_NOT_FOUND. */
export function forensicsKitFile(): { path: string; name: string } {
  const path = join(packageRoot(), 'dist', 'tocsin-forensics.cjs');
  if (!existsSync(path)) throw new TocsinError('TOCSIN_NOT_FOUND', 'the forensics kit is not built on this server (an administrator runs `npm run build:forensics`)');
  return { path, name: 'tocsin-forensics.cjs' };
}
