/**
 * The Exchange knowledge base: every known build (edition, CU, SU, release date) and, per CVE and CU, the
 * first fixing build, with provenance; and the verdict logic that turns a build into per-CVE verdicts.
 *
 *   import { loadExchangeKb } from '../products/exchange/kb/index.js';
 *   const kb = loadExchangeKb();                       // synchronous, cached, validated
 *   const a = kb.assess('15.1.2176.9', 'exact');       // a.vulnerable, a.indeterminate, a.verdicts
 *   kb.assess('15.1.2176', 'cu');                      // only the CU visible (OWA asset path)
 *
 * Data: data/exchange/{builds,cve-fixes,cves,cve-groups}.csv (see data/exchange/PROVENANCE.md); rules: verdict.ts.
 */
import { loadTables } from './load.js';
import { createKb } from './verdict.js';
import type { ExchangeKb } from './types.js';
import type { KbTables } from './load.js';

export type {
  BuildAssessment,
  BuildPrecision,
  CveInfo,
  CveVerdict,
  ExchangeBuildRow,
  ExchangeFixRow,
  ExchangeKb,
  FixStatus,
  Verdict,
} from './types.js';
export { createKb } from './verdict.js';
export { loadTables, validateTables, type KbTables } from './load.js';
export { loadCveGroups, validateGroups } from './groups.js';

let cached: ExchangeKb | undefined;

/**
 * Loads the in-repo knowledge base once per process (synchronous; about 1,500 rows).
 * Throws TocsinError TOCSIN_KB_DATA_INVALID, listing every problem, if the data files fail validation.
 */
export function loadExchangeKb(): ExchangeKb {
  cached ??= createKb(loadTables());
  return cached;
}

/**
 * The tables of this thread's knowledge base as plain data, for a worker thread's `primeExchangeKb`:
 * cloning them costs a few milliseconds, reading, parsing and validating the CSV files again ~0.3 s of CPU
 * per thread (measured with --cpu-prof on a 4,096-host scan).
 */
export function exchangeKbTables(): KbTables {
  const kb = loadExchangeKb();
  return { version: kb.version, builds: kb.builds, fixes: kb.fixes, cves: kb.cves, ...(kb.groups === undefined ? {} : { groups: kb.groups }) };
}

/** Seeds this thread's cache with tables another thread loaded and validated (same files, same version). */
export function primeExchangeKb(tables: KbTables): void {
  cached ??= createKb(tables);
}
