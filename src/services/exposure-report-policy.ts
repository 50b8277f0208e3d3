/**
 * The per-organisation / per-sector picture's decisions, pure (`tocsin report --by org|sector`). The store
 * (exposure-store.ts exposureGroupCounts) counts servers per group, CVE set and (build seen, vulnerable,
 * indeterminate); the meanings are those of the national report (report-policy.ts), per group:
 * - servers: distinct addresses whose newest observation is the product (Exchange); addresses: any exposure record
 *   (a feed's port-open row included);
 * - vulnerable: some headline CVE vulnerable on some port; per headline group the same for that group's CVEs;
 * - indeterminate: some headline CVE indeterminate and none vulnerable;
 * - patched: a build seen (when the product's policy asks for one) and no headline CVE vulnerable or
 *   indeterminate; undetermined: the rest (servers = vulnerable + patched + undetermined);
 * - compromised: addresses some feed reported compromised (a web shell); reported: addresses with a CVE a feed
 *   claimed.
 * Each address has one attribution, so the rows add up to the whole picture; unattributed addresses are a row.
 */
import type { ExposureGrouping, GroupSplitRow, GroupTotalsRow } from '../platform/db/exposure-store.js';
import { ALL_HEADLINE, headlineGroups, type ReportSubject } from './report-policy.js';

export interface GroupReportRow {
  /** False: the unattributed addresses. */
  readonly attributed: boolean;
  /** --by org: the organisation; null for the unattributed row. */
  readonly orgId: number | null;
  readonly org: string | null;
  /** --by org: the organisation's sector; --by sector: the sector (null: organisations without one, or unattributed). */
  readonly sector: string | null;
  readonly records: number;
  readonly addresses: number;
  readonly servers: number;
  readonly vulnerable: number;
  readonly indeterminate: number;
  readonly patched: number;
  readonly undetermined: number;
  readonly compromised: number;
  readonly reported: number;
  /** Servers vulnerable per headline group (ProxyLogon, ...; a lone CVE is its own group). */
  readonly byGroup: ReadonlyArray<{ readonly group: string; readonly vulnerable: number }>;
}

export interface GroupReport {
  readonly by: ExposureGrouping;
  readonly generatedAt: string;
  readonly definition: string;
  /** Headline groups in display order. */
  readonly groups: readonly string[];
  /** Most vulnerable servers first, then most servers, then by name; the unattributed row last. */
  readonly rows: readonly GroupReportRow[];
  /** The sums over every row (each address is in exactly one row). */
  readonly total: Omit<GroupReportRow, 'attributed' | 'orgId' | 'org' | 'sector'>;
}

interface Split {
  vulnerable: number;
  indeterminate: number;
  patched: number;
}

/** Pure: the store's counts and the product's policy → the report. */
export function decideGroupReport(
  counts: { readonly totals: readonly GroupTotalsRow[]; readonly splits: readonly GroupSplitRow[] },
  by: ExposureGrouping,
  subject: ReportSubject,
  generatedAt: string,
): GroupReport {
  const policy = subject.report;
  const groups = headlineGroups(subject.groups);
  const id = (attributed: boolean, key: string | null): string => `${attributed ? 'a' : 'u'}:${key ?? ''}`;
  const split = new Map<string, Split>();
  for (const s of counts.splits) {
    const k = `${id(s.attributed, s.key)}|${s.set}`;
    const acc = split.get(k) ?? { vulnerable: 0, indeterminate: 0, patched: 0 };
    if (s.vulnerable) acc.vulnerable += s.servers;
    else if (s.indeterminate) acc.indeterminate += s.servers;
    else if (s.hasBuild || !policy.patchedNeedsBuild) acc.patched += s.servers;
    split.set(k, acc);
  }
  const none: Split = { vulnerable: 0, indeterminate: 0, patched: 0 };
  const rows: GroupReportRow[] = counts.totals.map((t) => {
    const all = split.get(`${id(t.attributed, t.key)}|${ALL_HEADLINE}`) ?? none;
    return {
      attributed: t.attributed,
      orgId: by === 'org' && t.attributed && t.key !== null ? Number(t.key) : null,
      org: by === 'org' ? t.org : null,
      sector: t.attributed ? (by === 'sector' ? t.key : t.sector) : null,
      records: t.records,
      addresses: t.addresses,
      servers: t.servers,
      vulnerable: all.vulnerable,
      indeterminate: all.indeterminate,
      patched: all.patched,
      undetermined: t.servers - all.vulnerable - all.patched,
      compromised: t.compromised,
      reported: t.reported,
      byGroup: groups.map((g) => ({ group: g.name, vulnerable: (split.get(`${id(t.attributed, t.key)}|${g.name}`) ?? none).vulnerable })),
    };
  });
  rows.sort((a, b) =>
    Number(b.attributed) - Number(a.attributed) || b.vulnerable - a.vulnerable || b.servers - a.servers ||
    compareText(a.org ?? a.sector ?? '', b.org ?? b.sector ?? ''));
  const sum = (f: (r: GroupReportRow) => number): number => rows.reduce((n, r) => n + f(r), 0);
  return {
    by,
    generatedAt,
    definition: policy.definition.replace('{headline}', groups.map((g) => g.name).join(', ')),
    groups: groups.map((g) => g.name),
    rows,
    total: {
      records: sum((r) => r.records),
      addresses: sum((r) => r.addresses),
      servers: sum((r) => r.servers),
      vulnerable: sum((r) => r.vulnerable),
      indeterminate: sum((r) => r.indeterminate),
      patched: sum((r) => r.patched),
      undetermined: sum((r) => r.undetermined),
      compromised: sum((r) => r.compromised),
      reported: sum((r) => r.reported),
      byGroup: groups.map((g, i) => ({ group: g.name, vulnerable: sum((r) => r.byGroup[i]?.vulnerable ?? 0) })),
    },
  };
}

function compareText(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  return x < y ? -1 : x > y ? 1 : 0;
}
