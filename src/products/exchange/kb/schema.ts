/**
 * Column layout of the in-repo tables under data/exchange/ (documented in data/exchange/PROVENANCE.md).
 * Every row keeps its provenance (source_repo, source_path or source) so a reviewer can trace it.
 */
export const BUILD_FILE = 'builds.csv';
export const FIX_FILE = 'cve-fixes.csv';
export const CVE_FILE = 'cves.csv';
export const GROUP_FILE = 'cve-groups.csv';

/** builds.csv: one row per released build. release_date is YYYY-MM-DD, or YYYY-MM where only the month is known. */
export const BUILD_COLUMNS = ['edition', 'name', 'cu', 'su', 'release_date', 'build', 'uncertain', 'note', 'source_repo', 'source_path'] as const;
/**
 * cve-fixes.csv: per CVE and CU, the first fixing build (empty when none is known; see status) and the
 * date it was released (from builds.csv; where that only gives the month, MSRC's release date for the CVE).
 */
export const FIX_COLUMNS = ['cve', 'edition', 'cu', 'fixed_build', 'su', 'fix_date', 'status', 'note', 'source'] as const;
/** cves.csv: one row per CVE or advisory; title, severity, group, config_dependent and references are curated by hand. */
export const CVE_COLUMNS = ['id', 'title', 'severity', 'group', 'config_dependent', 'references', 'source'] as const;

/**
 * cve-groups.csv: named CVE groups (ProxyLogon) and lone headline CVEs (group = the CVE id), one row each;
 * headline rows first, in display order; `cves` space-separated in display order.
 */
export const GROUP_COLUMNS = ['group', 'headline', 'cves', 'references', 'source'] as const;

export type BuildRecord = Readonly<Record<(typeof BUILD_COLUMNS)[number], string>>;
export type FixRecord = Readonly<Record<(typeof FIX_COLUMNS)[number], string>>;
export type CveRecord = Readonly<Record<(typeof CVE_COLUMNS)[number], string>>;
export type GroupRecord = Readonly<Record<(typeof GROUP_COLUMNS)[number], string>>;

export const SEVERITIES = ['Critical', 'Important', 'Moderate', 'Low', ''] as const;
