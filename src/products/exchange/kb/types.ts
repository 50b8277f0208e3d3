/** Public types of the Exchange knowledge base (re-exported by index.ts). */

import type { BuildPrecision, Verdict } from '../../../core/contracts/verdict.js';
import type { CveGroups } from '../../sdk.js';
export type { Verdict, BuildPrecision } from '../../../core/contracts/verdict.js';

/** One CVE's verdict for one build, with the reason in words a CERT analyst can check against the tables. */
export interface CveVerdict {
  readonly cve: string;
  readonly verdict: Verdict;
  readonly reason: string;
}

/** One released build (builds.csv). */
export interface ExchangeBuildRow {
  /** "Exchange Server 2019", "Exchange Server SE", ... */
  readonly edition: string;
  /** Release name as the source spells it, e.g. "Exchange Server 2019 CU9 Apr21SU". */
  readonly name: string;
  /** "CU9", "RTM", "SP1" (2013 CU4), "SP3 RU32" (2010 update rollups), "Preview". */
  readonly cu: string;
  /** "Mar21SU", "Apr24HU", "KB4503027", or null for the CU (or rollup) itself. */
  readonly su: string | null;
  /** YYYY-MM-DD, or YYYY-MM where only the month is known. */
  readonly releaseDate: string;
  /** Normalised short form, digits and dots: "15.2.858.10". */
  readonly build: string;
  /** True where the sources disagree; such a row never supports a "not-vulnerable". */
  readonly uncertain: boolean;
  readonly note: string;
  /** "repo @ path" or a document name: where the row came from. */
  readonly source: string;
}

export type FixStatus = 'confirmed' | 'uncertain' | 'derived' | 'no-build-fix';

/** One CVE × CU row of cve-fixes.csv. */
export interface ExchangeFixRow {
  readonly cve: string;
  readonly edition: string;
  readonly cu: string;
  /** First fixing build in that CU, or null where none is known (see status). */
  readonly fixedBuild: string | null;
  readonly su: string | null;
  /** Release date of the fixing build (YYYY-MM-DD, or YYYY-MM where only the month is known), or null. */
  readonly fixDate: string | null;
  readonly status: FixStatus;
  readonly note: string;
  readonly source: string;
}

/** One CVE or advisory (cves.csv). */
export interface CveInfo {
  readonly id: string;
  readonly title: string;
  /** MSRC rating ("Critical", "Important", ...) or "" where not curated. */
  readonly severity: string;
  /** "ProxyLogon", "ProxyShell", "ProxyNotShell", ... or null. */
  readonly group: string | null;
  /** Why a build alone does not settle it (e.g. Extended Protection), or null. */
  readonly configDependent: string | null;
  readonly references: readonly string[];
}

/** Everything the knowledge base says about one build. */
export interface BuildAssessment {
  /** The build as given (normalised to digits and dots). */
  readonly input: string;
  readonly precision: BuildPrecision;
  /** True when the build lies in a CU (or 2010/2007 rollup) the tables list. */
  readonly known: boolean;
  readonly edition: string | null;
  readonly cu: string | null;
  readonly su: string | null;
  readonly releaseDate: string | null;
  /** The listed build the input was matched to (itself, or the nearest in its CU when the revision drifts). */
  readonly listedBuild: string | null;
  readonly notes: readonly string[];
  /** One verdict per CVE in the knowledge base, in cves.csv order. */
  readonly verdicts: readonly CveVerdict[];
  readonly vulnerable: readonly string[];
  readonly indeterminate: readonly string[];
}

export interface ExchangeKb {
  /** Content hash of the data files (12 hex digits), to record with every assessment. */
  readonly version: string;
  readonly builds: readonly ExchangeBuildRow[];
  readonly fixes: readonly ExchangeFixRow[];
  readonly cves: readonly CveInfo[];
  /** CVE groups and headline CVEs (cve-groups.csv); absent for tables built in memory without one. */
  readonly groups?: CveGroups;
  /**
   * Verdicts for one build. `precision` 'cu' means only the CU is known (e.g. /owa/auth/15.1.2176/): the
   * revision, if given, is ignored. Throws TocsinError TOCSIN_KB_UNKNOWN_BUILD if `build` is not a build
   * number at all; a well-formed build the tables do not know gives known=false and all-indeterminate.
   * Memoised: the returned object is frozen and shared.
   */
  assess(build: string, precision: BuildPrecision): BuildAssessment;
  /** Edition of a build ("Exchange Server SE", ...), or null for Exchange Online (15.20) and non-Exchange numbers. */
  editionOf(build: string): string | null;
}
