/**
 * Findings use cases (issue 9 §1): fold what scans and feeds saw into findings, list them, and the analyst's
 * close / reopen. The rules are src/findings (pure); the set-based fold is the store's.
 * CONTRACT for other services (scan, feed import, campaigns): call `foldFindings(db)` after storing new
 * observations, and before reading findings.
 */
import type { Kysely } from 'kysely';
import type { DbSchema } from '../platform/db/schema.js';
import { foldEvidence, type FoldCounts } from '../platform/db/finding-store.js';
import { refreshAttributions } from './attribute.js';

export interface FoldFindingsOptions {
  /** The fold's clock (expiries are judged at it); default: the real time. */
  readonly now?: Date;
  /** Who the fold's events name (default `tocsin`). */
  readonly who?: string;
  /**
   * `refresh` (default): bring the stored attributions up to date first, so owners and left-scope closures are
   * current. `stored`: use the attributions as stored (a caller that has just refreshed them).
   */
  readonly attributions?: 'refresh' | 'stored';
  readonly batchSize?: number;
}

export interface FoldSummary extends FoldCounts {
  readonly ms: number;
}

export async function foldFindings(db: Kysely<DbSchema>, opts: FoldFindingsOptions = {}): Promise<FoldSummary> {
  const start = performance.now();
  if ((opts.attributions ?? 'refresh') === 'refresh') await refreshAttributions(db, { who: opts.who ?? 'tocsin' });
  const counts = await foldEvidence(db, {
    now: opts.now ?? new Date(), who: opts.who ?? 'tocsin', ...(opts.batchSize === undefined ? {} : { batchSize: opts.batchSize }),
  });
  return { ...counts, ms: Math.round(performance.now() - start) };
}

export {
  closeFinding,
  findingEvents,
  getFinding,
  listFindings,
  recordFindingEvent,
  reopenFinding,
  type Finding,
  type FindingEvent,
  type FindingQuery,
} from '../platform/db/finding-store.js';
