/**
 * The national picture's decisions, pure: which CVEs are headline and what "patched" means come from the
 * product (its CVE groups from data, its ReportPolicy); the database adapter (src/platform/db/report.ts)
 * only counts. `reportQuery` says what to count; `decideReport` turns the counts into the report.
 *
 * Per server and CVE set (each headline group, a lone headline CVE being its own group, and all headline
 * CVEs together, which is the headline split): VULNERABLE when some CVE of the set is vulnerable; PATCHED
 * when a build was seen (if the policy asks for one) and no CVE of the set is vulnerable or indeterminate;
 * UNDETERMINED otherwise (no build seen, or some CVE indeterminate and none vulnerable). The three add up
 * to the server count. Indeterminate is never counted as patched: that would be a guess.
 */
import type { CveGroups, ReportPolicy } from '../products/sdk.js';
import type { ReportQuery, ReportRows, ScanSummary, SetSplitRow } from '../platform/db/report.js';

export interface CveCount {
  readonly cve: string;
  readonly headline: boolean;
  readonly group: string | null;
  /** Servers for which the CVE is vulnerable. */
  readonly vulnerable: number;
  /** Servers for which it is indeterminate (and not vulnerable on any port). */
  readonly indeterminate: number;
}

export interface GroupStatus {
  readonly group: string;
  readonly cves: readonly string[];
  readonly patched: number;
  readonly vulnerable: number;
  readonly undetermined: number;
  readonly patchedShare: number | null;
}

/** The report of one product (today: Exchange; the JSON field names are the published format). */
export interface ExchangeReport {
  readonly scope: {
    readonly kind: ReportRows['scope']['kind'];
    /** Scans covered; for "all", every stored scan. Empty when nothing is stored. */
    readonly scanIds: readonly string[];
    /** The scan, when the scope is one scan. */
    readonly scan: ScanSummary | null;
  };
  readonly generatedAt: string;
  readonly hosts: ReportRows['hosts'];
  readonly exchange: {
    /** Distinct IPs with the product. */
    readonly servers: number;
    /** (ip, port) pairs with the product. */
    readonly services: number;
    /** Servers whose exact build (with security update) was seen. */
    readonly exactBuild: number;
    /** Distinct IPs of the ids the policy counts apart (Exchange Online / Microsoft 365 front ends). */
    readonly exchangeOnline: number;
    readonly byEdition: ReadonlyArray<{ readonly edition: string; readonly servers: number }>;
    readonly byEditionCu: ReadonlyArray<{ readonly edition: string; readonly cu: string; readonly servers: number }>;
  };
  /** Headline CVEs first (always listed), then every other CVE with a count, most vulnerable first. */
  readonly cves: readonly CveCount[];
  readonly indeterminate: {
    /** Servers with at least one CVE indeterminate. */
    readonly anyCve: number;
    /** Servers with at least one headline CVE indeterminate and none vulnerable. */
    readonly headline: number;
  };
  readonly patched: {
    readonly definition: string;
    readonly servers: number;
    readonly patched: number;
    readonly vulnerable: number;
    readonly undetermined: number;
    /** patched / servers; null when there is no server. */
    readonly patchedShare: number | null;
    readonly vulnerableShare: number | null;
    /** The same split per headline group (ProxyLogon, ...; a lone CVE is its own group). */
    readonly byGroup: readonly GroupStatus[];
  };
}

/** What the report is about: the product's id, its report policy and its CVE groups. */
export interface ReportSubject {
  readonly id: string;
  readonly report: ReportPolicy;
  readonly groups: CveGroups;
}

/** The set of all headline CVEs; a name no group can have (group names are letters, digits and dashes). */
export const ALL_HEADLINE = '*';

/** Headline groups in display order: name and CVEs (a lone CVE is its own group). */
export function headlineGroups(groups: CveGroups): Array<{ name: string; cves: string[] }> {
  const out: Array<{ name: string; cves: string[] }> = [];
  for (const h of groups.headline) {
    const name = h.group ?? h.cve;
    const g = out.find((x) => x.name === name);
    if (g === undefined) out.push({ name, cves: [h.cve] });
    else g.cves.push(h.cve);
  }
  return out;
}

/** What the adapter must count for this product. */
export function reportQuery(subject: ReportSubject): ReportQuery {
  return {
    product: subject.id,
    countedApart: subject.report.countedApart,
    sets: [...headlineGroups(subject.groups), { name: ALL_HEADLINE, cves: subject.groups.headline.map((h) => h.cve) }],
  };
}

interface Split {
  readonly patched: number;
  readonly vulnerable: number;
  readonly indeterminateOnly: number;
}

/** The policy applied to one set's rows. */
function splitOf(rows: readonly SetSplitRow[], set: string, policy: ReportPolicy): Split {
  let patched = 0;
  let vulnerable = 0;
  let indeterminateOnly = 0;
  for (const r of rows) {
    if (r.set !== set) continue;
    if (r.vulnerable) vulnerable += r.servers;
    else if (r.indeterminate) indeterminateOnly += r.servers;
    else if (r.hasBuild || !policy.patchedNeedsBuild) patched += r.servers;
  }
  return { patched, vulnerable, indeterminateOnly };
}

/** Pure: the counts and the product's policy → the report. */
export function decideReport(rows: ReportRows, subject: ReportSubject, generatedAt: string): ExchangeReport {
  const policy = subject.report;
  const groups = headlineGroups(subject.groups);
  const servers = rows.servers;
  const all = splitOf(rows.sets, ALL_HEADLINE, policy);
  const byGroup: GroupStatus[] = groups.map((g) => {
    const s = splitOf(rows.sets, g.name, policy);
    return {
      group: g.name,
      cves: g.cves,
      patched: s.patched,
      vulnerable: s.vulnerable,
      undetermined: servers - s.patched - s.vulnerable,
      patchedShare: servers === 0 ? null : s.patched / servers,
    };
  });
  return {
    scope: rows.scope,
    generatedAt,
    hosts: rows.hosts,
    exchange: {
      servers,
      services: rows.services,
      exactBuild: rows.exactBuild,
      exchangeOnline: rows.countedApart,
      byEdition: sumByEdition(rows.byEditionCu),
      byEditionCu: [...rows.byEditionCu].sort((a, b) => compareText(a.edition, b.edition) || compareCu(a.cu, b.cu)),
    },
    cves: orderCves(rows.cves, subject.groups),
    indeterminate: { anyCve: rows.anyIndeterminate, headline: all.indeterminateOnly },
    patched: {
      definition: policy.definition.replace('{headline}', groups.map((g) => g.name).join(', ')),
      servers,
      patched: all.patched,
      vulnerable: all.vulnerable,
      undetermined: servers - all.patched - all.vulnerable,
      patchedShare: servers === 0 ? null : all.patched / servers,
      vulnerableShare: servers === 0 ? null : all.vulnerable / servers,
      byGroup,
    },
  };
}

function sumByEdition(rows: ReadonlyArray<{ edition: string; servers: number }>): Array<{ edition: string; servers: number }> {
  const m = new Map<string, number>();
  for (const r of rows) m.set(r.edition, (m.get(r.edition) ?? 0) + r.servers);
  return [...m].map(([edition, servers]) => ({ edition, servers })).sort((a, b) => compareText(a.edition, b.edition));
}

function orderCves(rows: ReadonlyArray<{ cve: string; vulnerable: number; indeterminate: number }>, groups: CveGroups): CveCount[] {
  const byCve = new Map(rows.map((r) => [r.cve, r]));
  const out: CveCount[] = groups.headline.map((h) => ({
    cve: h.cve,
    headline: true,
    group: h.group,
    vulnerable: byCve.get(h.cve)?.vulnerable ?? 0,
    indeterminate: byCve.get(h.cve)?.indeterminate ?? 0,
  }));
  const headline = new Set(groups.headline.map((h) => h.cve));
  const rest = rows
    .filter((r) => !headline.has(r.cve) && (r.vulnerable > 0 || r.indeterminate > 0))
    .sort((a, b) => b.vulnerable - a.vulnerable || b.indeterminate - a.indeterminate || compareText(a.cve, b.cve));
  for (const r of rest) out.push({ cve: r.cve, headline: false, group: null, vulnerable: r.vulnerable, indeterminate: r.indeterminate });
  return out;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const NATURAL = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** "CU9" before "CU10", "SP3 RU6" before "SP3 RU14"; "unknown" last. */
function compareCu(a: string, b: string): number {
  if (a === 'unknown' || b === 'unknown') return (a === 'unknown' ? 1 : 0) - (b === 'unknown' ? 1 : 0);
  return NATURAL.compare(a, b);
}
