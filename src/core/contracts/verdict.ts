/** The verdict vocabulary shared by the knowledge bases, storage, reports and (later) findings and the API. */

/** One CVE on one service: never a guess; `indeterminate` says the evidence cannot decide. */
export type Verdict = 'vulnerable' | 'not-vulnerable' | 'indeterminate';

/** How much of a build a detector saw: the whole build (with the security update) or only its CU. */
export type BuildPrecision = 'exact' | 'cu';

/**
 * A product plugin's id (kebab-case), e.g. "ms-exchange". Fingerprints may also name products seen only for
 * the record (e.g. "ms-exchange-online", "nginx"), which have no plugin.
 */
export type ProductId = string;
