/**
 * Selection rules (issue 9 §2): which services of which organisations a campaign warns about. Pure.
 * A service is in when, for a selected CVE, our verdict is vulnerable (`confirmed-by-build`) or indeterminate
 * (`update-not-visible`), or a feed reported it (`reported-by-feed`). One service seen by a scan and a feed is
 * merged into one exposure: the strongest evidence per CVE wins (a build we read beats a feed's word).
 */
import type { CampaignExposure, CampaignOrg, CampaignSelection, CveEvidence, EvidenceKind, ExposureFact } from './types.js';

const CVE_ID = /^CVE-\d{4}-\d{4,}$/;

/** Upper-cased, de-duplicated CVE ids; the invalid ones are returned apart. */
export function parseCveList(raw: readonly string[]): { readonly cves: readonly string[]; readonly invalid: readonly string[] } {
  const cves: string[] = [];
  const invalid: string[] = [];
  for (const part of raw.flatMap((r) => r.split(','))) {
    const id = part.trim().toUpperCase();
    if (id === '') continue;
    if (!CVE_ID.test(id)) invalid.push(part.trim());
    else if (!cves.includes(id)) cves.push(id);
  }
  return { cves, invalid };
}

const STRENGTH: Readonly<Record<EvidenceKind, number>> = { 'confirmed-by-build': 3, 'update-not-visible': 2, 'reported-by-feed': 1 };

function evidenceOf(fact: ExposureFact, cve: string): CveEvidence | null {
  if (fact.vulnerable.includes(cve)) return { cve, evidence: 'confirmed-by-build', feed: null };
  if (fact.indeterminate.includes(cve)) return { cve, evidence: 'update-not-visible', feed: null };
  // A feed's claim counts where we read no build ourselves: a build our scan read (patched) beats an old report.
  if (fact.feed !== null && fact.reportedCves.includes(cve) && (fact.source === 'feed' || fact.build === null)) {
    return { cve, evidence: 'reported-by-feed', feed: fact.feed };
  }
  return null;
}

function key(ip: string, port: number | null): string {
  return `${ip}|${port ?? ''}`;
}

/**
 * The exposures a selection keeps, one per (ip, port), sorted by address then port. A feed row without a port
 * (a feed that names only the address) is kept apart from the ports our scans saw.
 */
export function selectExposures(facts: readonly ExposureFact[], sel: CampaignSelection): CampaignExposure[] {
  const wanted = new Set(sel.cves);
  const merged = new Map<string, { first: ExposureFact; cves: Map<string, CveEvidence>; compromised: boolean; hostname: string | null; build: string | null; seenAt: string; banner: string | null; scan: boolean }>();
  for (const f of facts) {
    if (sel.source === 'scan' && f.source !== 'scan') continue;
    if (sel.source === 'feed' && f.feed === null) continue;
    const found: CveEvidence[] = [];
    for (const cve of wanted) {
      const e = evidenceOf(f, cve);
      if (e !== null) found.push(e);
    }
    // A compromised host is warned about even when no selected CVE names it (its build may be patched since):
    // patched is not safe. Without --compromised such a host still needs a selected CVE.
    if (found.length === 0 && !(sel.compromisedOnly && f.compromised)) continue;
    const k = key(f.ip, f.port);
    let m = merged.get(k);
    if (m === undefined) {
      m = { first: f, cves: new Map(), compromised: false, hostname: f.hostname, build: f.build, seenAt: f.seenAt, banner: f.banner ?? null, scan: f.source === 'scan' };
      merged.set(k, m);
    }
    m.compromised ||= f.compromised;
    m.hostname ??= f.hostname;
    // The build our scan read is more precise than a feed's.
    if (f.source === 'scan' && f.build !== null) m.build = f.build;
    else m.build ??= f.build;
    m.banner ??= f.banner ?? null;
    m.scan ||= f.source === 'scan';
    if (f.seenAt > m.seenAt) m.seenAt = f.seenAt;
    for (const e of found) {
      const had = m.cves.get(e.cve);
      if (had === undefined || STRENGTH[e.evidence] > STRENGTH[had.evidence]) m.cves.set(e.cve, e);
    }
  }
  const out: CampaignExposure[] = [];
  for (const m of merged.values()) {
    if (sel.compromisedOnly && !m.compromised) continue;
    out.push({
      ip: m.first.ip,
      port: m.first.port,
      hostname: m.hostname,
      build: m.build,
      source: m.scan ? 'scan' : 'feed',
      cves: [...m.cves.values()].sort((a, b) => a.cve.localeCompare(b.cve)),
      compromised: m.compromised,
      seenAt: m.seenAt,
      banner: m.banner,
    });
  }
  return out.sort(compareExposures);
}

/** Address order (IPv4 numerically, then IPv6 as text), then port. */
export function compareExposures(a: { ip: string; port: number | null }, b: { ip: string; port: number | null }): number {
  const ka = ipSortKey(a.ip);
  const kb = ipSortKey(b.ip);
  if (ka !== kb) return ka < kb ? -1 : 1;
  return (a.port ?? -1) - (b.port ?? -1);
}

function ipSortKey(ip: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  if (m === null) return `1${ip}`;
  return `0${m.slice(1).map((x) => x.padStart(3, '0')).join('.')}`;
}

/** Whether an organisation passes the selection's sector and organisation filters. */
export function orgSelected(org: Pick<CampaignOrg, 'name' | 'sector'>, sel: CampaignSelection): boolean {
  if (sel.sector !== null && (org.sector ?? '').toLowerCase() !== sel.sector.toLowerCase()) return false;
  if (sel.orgs.length > 0 && !sel.orgs.some((n) => n.toLowerCase() === org.name.toLowerCase())) return false;
  return true;
}

/** One organisation's share of a campaign, before the recipient chain is worked out. */
export interface OrgGroup {
  readonly orgId: number;
  readonly exposures: readonly CampaignExposure[];
}

/**
 * Groups facts per organisation (by the attribution `orgOf` gives; unattributed facts are returned apart) and
 * applies the selection to each organisation's facts: one group per organisation with at least one exposure.
 */
export function groupByOrganisation(
  facts: readonly ExposureFact[],
  orgOf: (fact: ExposureFact) => number | null,
  orgs: ReadonlyMap<number, Pick<CampaignOrg, 'name' | 'sector'>>,
  sel: CampaignSelection,
): { readonly groups: readonly OrgGroup[]; readonly unattributed: number } {
  const byOrg = new Map<number, ExposureFact[]>();
  const unattributedKeys = new Set<string>();
  for (const f of facts) {
    const id = orgOf(f);
    if (id === null) {
      if (selectExposures([f], sel).length > 0) unattributedKeys.add(key(f.ip, f.port));
      continue;
    }
    const list = byOrg.get(id);
    if (list === undefined) byOrg.set(id, [f]);
    else list.push(f);
  }
  const groups: OrgGroup[] = [];
  for (const [orgId, list] of byOrg) {
    const org = orgs.get(orgId);
    if (org === undefined || !orgSelected(org, sel)) continue;
    const exposures = selectExposures(list, sel);
    if (exposures.length > 0) groups.push({ orgId, exposures });
  }
  groups.sort((a, b) => (orgs.get(a.orgId)?.name ?? '').localeCompare(orgs.get(b.orgId)?.name ?? '') || a.orgId - b.orgId);
  return { groups, unattributed: unattributedKeys.size };
}
