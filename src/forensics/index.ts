/** Public surface of the offline compromise-assessment kit. */
export { analyze, type AnalyzeOptions, type Progress } from './analyze.js';
export { runForensics, type ForensicsOptions, type ForensicsIo } from './run.js';
export { LOG_RULES, FILE_RULES, CAMPAIGNS } from './rules.js';
export { parseIocFile } from './iocs.js';
export { formatText, formatJsonl, formatJsonlMeta, formatCsv, exitCodeOf, EXIT_CODES } from './report.js';
export { KIT_VERSION, rulesRevision, kitBanner } from './version.js';
export type * from './types.js';
