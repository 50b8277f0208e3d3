/**
 * The patch curve's vocabulary (issue 9 §4). Pure: the store aggregates the finding history per day and per
 * duration in the database and hands over counts; src/stats turns counts into series, quantiles and survival.
 */

/** The daily series, in the order they are printed and drawn. */
export const SERIES = ['exposed', 'notified', 'acknowledged', 'patched', 'compromised'] as const;
export type SeriesName = (typeof SERIES)[number];

/** How findings are grouped: one group `all`, or per sector, organisation or CVE. */
export const GROUP_BY = ['sector', 'org', 'cve'] as const;
export type GroupBy = (typeof GROUP_BY)[number];

/** The group name when nothing is grouped. */
export const ALL = 'all';

/**
 * A change of one series' count in one group on one day (YYYY-MM-DD, UTC), as the store sums them.
 * - exposed / compromised: +1 when a finding (a CVE one / a host's compromise one) opens or reopens, -1 when it closes;
 * - patched: +1 when a finding closes `patched`, -1 when it reopens;
 * - notified / acknowledged: +1 on the day of a finding's first successful warning / first acknowledgement.
 * So each series on day D is the count at the end of D (UTC): findings open, closed patched, warned so far, ...
 */
export interface DayDelta {
  readonly group: string;
  readonly day: string;
  readonly series: SeriesName;
  readonly delta: number;
}

/** One group's counts at the end of one day. */
export interface DailyPoint {
  readonly group: string;
  readonly day: string;
  readonly exposed: number;
  readonly notified: number;
  readonly acknowledged: number;
  readonly patched: number;
  readonly compromised: number;
}

/** Where a time to patch starts: the finding's first detection, or its first successful warning. */
export type Basis = 'detection' | 'warning';

/**
 * How many findings of a group took `minutes` from the basis to their end: `patched` ones were closed patched
 * then; `censored` ones were still open then (the end of the range), or closed for another reason (service gone,
 * left scope, false positive, accepted risk: not known to be patched), so they count only as "not patched yet".
 */
export interface DurationCount {
  readonly group: string;
  readonly minutes: number;
  readonly patched: number;
  readonly censored: number;
}

/** Time to patch of one group from one basis, in days. */
export interface TimeToPatch {
  readonly group: string;
  readonly basis: Basis;
  /** Findings closed patched (their times are the quantiles' sample). */
  readonly patched: number;
  /** Findings not (yet) patched: counted by the survival estimate, not by the quantiles. */
  readonly censored: number;
  /** Median and 90th percentile (nearest rank: a time some finding really took) over the patched findings; null if none. */
  readonly medianDays: number | null;
  readonly p90Days: number | null;
  /**
   * The time by which half of ALL findings were patched, by the Kaplan-Meier estimate (open ones count as
   * censored): null while fewer than half are; the honest figure while many are still open.
   */
  readonly survivalMedianDays: number | null;
}

/** One step of a Kaplan-Meier survival curve: the share still unpatched just after `days`. */
export interface SurvivalPoint {
  readonly days: number;
  readonly survival: number;
  /** Findings still at risk (neither patched nor censored) just before `days`. */
  readonly atRisk: number;
  readonly patched: number;
  readonly censored: number;
}

export interface SurvivalCurve {
  readonly group: string;
  /** Findings in the group. */
  readonly findings: number;
  /** Starts at {days: 0, survival: 1}. */
  readonly points: readonly SurvivalPoint[];
}
