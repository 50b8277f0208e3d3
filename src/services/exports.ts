/**
 * Exports (issue 10 §6): a MISP event and a STIX 2.1 bundle per campaign or incident, and CSV/JSONL of lists.
 * The writers are pure (src/exports); this file gathers their input from the stores:
 * - a campaign: the exposures frozen in its outbox when it was created (one message per organisation: the
 *   addresses, the selected CVEs each is exposed to, compromise evidence), so the export says exactly what the
 *   organisations were warned about, whatever was seen since;
 * - an incident: the addresses and CVEs of its linked findings (a `compromised` finding marks its address
 *   compromised), the incident's own CVEs, and web-shell paths from its stage-1 indicators and from uploaded
 *   forensics-kit output (JSONL).
 * Staff only: the callers (API route, CLI) check the role; nothing here is scoped to one organisation.
 */
import type { Kysely } from 'kysely';
import { TocsinError } from '../core/errors.js';
import {
  buildMispEvent, buildStixBundle, csvLine, exportSource, jsonlLine, recordCells, webShellPathOf, webShellsFromForensics,
  type ExportInput, type ExportSource, type MispDocument, type StixBundle, type Tlp, TLP_LEVELS,
} from '../exports/index.js';
import { orgIdByName } from '../platform/db/account-store.js';
import { campaignMessages, requireCampaign } from '../platform/db/campaign-store.js';
import { attachmentContent, attachmentsOf, getIncident, incidentLinks } from '../platform/db/incident-store.js';
import type { DbSchema } from '../platform/db/schema.js';
import { exposureFilter, listExposures, type ExposureRecord } from './exposures.js';
import type { Scope } from './accounts.js';

export { csvLine, jsonlLine, recordCells };
export type { Tlp };

type Db = Kysely<DbSchema>;

export type ExportFormat = 'misp' | 'stix';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['misp', 'stix'];

export interface ExportOptions {
  /** The CERT named as producer (default TOCSIN_CERT_NAME, else "Tocsin CERT"). */
  readonly producer?: string;
  /** Override the TLP level (campaign default: amber, incident default: the report's own). */
  readonly tlp?: Tlp;
}

/** `--tlp` / `?tlp=` as typed. @throws TocsinError TOCSIN_ARG_INVALID */
export function parseTlp(raw: string): Tlp {
  const t = raw.trim().toLowerCase().replace(/^tlp:/, '');
  const found = TLP_LEVELS.find((l) => l === t);
  if (found === undefined) throw new TocsinError('TOCSIN_ARG_INVALID', `TLP must be one of ${TLP_LEVELS.join(', ')}`);
  return found;
}

function producerOf(o: ExportOptions): string {
  return o.producer ?? process.env['TOCSIN_CERT_NAME'] ?? '';
}

interface FrozenExposure {
  readonly ip?: unknown;
  readonly cves?: unknown;
  readonly compromised?: unknown;
}

function cvesOf(e: FrozenExposure): string[] {
  if (!Array.isArray(e.cves)) return [];
  return e.cves.flatMap((c: unknown) => (typeof c === 'object' && c !== null && 'cve' in c && typeof c.cve === 'string' ? [c.cve] : []));
}

/** The export input of a campaign. @throws TocsinError TOCSIN_CAMPAIGN_NOT_FOUND */
export async function campaignExportSource(db: Db, id: number, o: ExportOptions = {}): Promise<ExportSource> {
  const c = await requireCampaign(db, id);
  const ips: ExportInput['ips'][number][] = [];
  for (const m of await campaignMessages(db, id)) {
    const list: unknown = m.exposures;
    if (!Array.isArray(list)) continue;
    for (const e of list as FrozenExposure[]) {
      if (typeof e.ip !== 'string') continue;
      ips.push({ ip: e.ip, cves: cvesOf(e), org: m.orgName, compromised: e.compromised === true });
    }
  }
  const times = [c.createdAt, c.approvedAt, c.cancelledAt].filter((d): d is Date => d !== null).map((d) => d.getTime());
  return exportSource({
    kind: 'campaign', id, title: c.name, created: c.createdAt, modified: new Date(Math.max(...times)),
    tlp: o.tlp ?? 'amber', producer: producerOf(o), ips,
  });
}

function stage1Indicators(stage1: unknown): string[] {
  if (typeof stage1 !== 'object' || stage1 === null || !('indicators' in stage1) || !Array.isArray(stage1.indicators)) return [];
  return stage1.indicators.filter((s: unknown): s is string => typeof s === 'string');
}

/** The export input of an incident report. @throws TocsinError TOCSIN_INCIDENT_NOT_FOUND */
export async function incidentExportSource(db: Db, id: number, o: ExportOptions = {}): Promise<ExportSource> {
  const inc = await getIncident(db, id, null);
  if (inc === null) throw new TocsinError('TOCSIN_INCIDENT_NOT_FOUND', `no incident report with id ${id}`);
  const ips: ExportInput['ips'][number][] = [];
  for (const l of await incidentLinks(db, id, null)) {
    if (l.finding === null) continue;
    const compromised = l.finding.cve.toLowerCase() === 'compromised';
    ips.push({ ip: l.finding.ip, cves: compromised ? [] : [l.finding.cve], org: inc.org, compromised });
  }
  const files: { path: string; sha256: string | null }[] = [];
  for (const s of stage1Indicators(inc.stage1)) {
    const p = webShellPathOf(s);
    if (p !== null) files.push({ path: p, sha256: null });
  }
  for (const a of await attachmentsOf(db, id)) {
    // Only text output of the kit is read (each attachment is at most 5 MiB, checked when it was stored).
    if (!/\.(jsonl|json|ndjson|txt)$/i.test(a.filename) && !/json|text\/plain/i.test(a.contentType)) continue;
    const full = await attachmentContent(db, id, a.id);
    if (full !== null) files.push(...webShellsFromForensics(full.content.toString('utf8')));
  }
  const tlp = o.tlp ?? parseTlp(inc.tlp);
  return exportSource({
    kind: 'incident', id, title: inc.summary === '' ? `report ${id}` : inc.summary, created: inc.createdAt, modified: inc.updatedAt,
    tlp, producer: producerOf(o), ips, cves: inc.cves.filter((c) => /^CVE-\d{4}-\d{4,7}$/i.test(c)), files,
  });
}

export interface ExportDocument {
  /** A file name for Content-Disposition / --output (ASCII, no path). */
  readonly filename: string;
  readonly contentType: string;
  readonly document: MispDocument | StixBundle;
}

export function renderExport(s: ExportSource, format: ExportFormat): ExportDocument {
  const base = `tocsin-${s.kind}-${s.id}`;
  return format === 'misp'
    ? { filename: `${base}-misp.json`, contentType: 'application/json; charset=utf-8', document: buildMispEvent(s) }
    : { filename: `${base}-stix.json`, contentType: 'application/stix+json;version=2.1', document: buildStixBundle(s) };
}

export async function exportCampaign(db: Db, id: number, format: ExportFormat, o: ExportOptions = {}): Promise<ExportDocument> {
  return renderExport(await campaignExportSource(db, id, o), format);
}

export async function exportIncident(db: Db, id: number, format: ExportFormat, o: ExportOptions = {}): Promise<ExportDocument> {
  return renderExport(await incidentExportSource(db, id, o), format);
}

// ---------------------------------------------------------------------------------------------------------------
// Lists

export interface ExposureExportQuery {
  readonly cve?: string;
  readonly org?: string;
}

/**
 * Every exposure in the caller's scope, as a lazy stream in (ip, port) order: the store reads keyset pages of
 * 2,000 keys as the stream is consumed (src/platform/db/exposure-store.ts), so a million-row export holds one page
 * in memory, never the list. The scope is applied to the query exactly as in exposurePage (accounts.ts): an
 * organisation account reads only its own organisation and naming another one is TOCSIN_FORBIDDEN.
 */
export async function exposureExport(db: Db, scope: Scope, q: ExposureExportQuery): Promise<{ records: AsyncIterable<ExposureRecord>; orgScope: number | null }> {
  let org = q.org;
  if (scope.kind === 'org') {
    if (org !== undefined && org.trim().toLowerCase() !== scope.org.toLowerCase()) {
      throw new TocsinError('TOCSIN_FORBIDDEN', 'an organisation account sees only its own organisation');
    }
    org = scope.org;
  }
  const filter = exposureFilter({ ...(org === undefined ? {} : { org }), ...(q.cve === undefined ? {} : { cve: q.cve }) });
  const { records } = await listExposures(db, filter);
  // For the audit row: the organisation the read was limited to (a staff filter by name counts too).
  const orgScope = scope.kind === 'org' ? scope.orgId : filter.org === undefined ? null : (await orgIdByName(db, filter.org))?.id ?? null;
  async function* checked(): AsyncGenerator<ExposureRecord> {
    for await (const r of records) {
      // Defence in depth, as in exposurePage: the store filtered; another organisation's record here is a bug.
      if (scope.kind === 'org' && r.orgId !== scope.orgId) throw new TocsinError('TOCSIN_INTERNAL', 'scoped export returned another organisation\'s record');
      yield r;
    }
  }
  return { records: checked(), orgScope };
}
