/**
 * From a plan (plain data) to engine options: the lazy target iterator, the exclusion matcher and the rate
 * limiter, with the probe kit its caller wires (the composition root: src/services). Used identically by the
 * main thread (one worker) and by each worker thread, so a shard sees exactly the same target order as every
 * other shard.
 *
 * Also the CLI-side loading of targets and exclusion files (validated before anything is sent).
 */
import type { Readable } from 'node:stream';
import type { EngineOptions } from './engine.js';
import type { ScanPlan } from './plan.js';
import type { ScanKit } from './kit.js';
import { countTargets, dnsResolver, expandTargets, loadTargets as readTargets, resolveTargets } from './targets.js';
import { exclusionMatcher, exclusionProblem, loadExclusions as readExclusions, looksLikeAddress } from './scope.js';
import { createRateLimiter } from './rate-limit.js';

export interface SetupCallbacks {
  readonly done: ReadonlySet<string>;
  readonly shard?: { readonly index: number; readonly count: number };
  readonly signal?: AbortSignal;
  onResult: EngineOptions['onResult'];
  onWarning?: EngineOptions['onWarning'];
}

export function engineOptionsFor(plan: ScanPlan, cb: SetupCallbacks, kit: ScanKit): EngineOptions {
  const shards = cb.shard?.count ?? 1;
  const isExcluded = exclusionMatcher(plan.exclusions);
  // Shards are interleaved over the same target order, so each takes an equal share of both rates.
  const limiter = createRateLimiter({ perSecond: plan.rate / shards, perNetworkPerSecond: plan.ratePerNetwork / shards });
  return {
    targets: expandTargets(plan.targets),
    ports: plan.ports,
    concurrency: Math.max(1, Math.ceil(plan.concurrency / shards)),
    limits: plan.limits,
    kit,
    isExcluded,
    ...(limiter === null ? {} : { limiter }),
    done: cb.done,
    ...(cb.shard === undefined ? {} : { shard: cb.shard }),
    ...(cb.signal === undefined ? {} : { signal: cb.signal }),
    onResult: cb.onResult,
    ...(cb.onWarning === undefined ? {} : { onWarning: cb.onWarning }),
  };
}

/**
 * CLI side: expands @file and -, validates every target (TOCSIN_TARGET_INVALID naming file and line),
 * then resolves host names once (a stored plan holds name=ip pairs, so workers and resumes never
 * resolve again). Names that do not resolve are reported through `onUnresolved` and skipped.
 */
export async function loadTargets(
  args: readonly string[],
  stdin: Readable,
  onUnresolved: (hostname: string, reason: string) => void = () => undefined,
): Promise<readonly string[]> {
  const texts = await readTargets(args, stdin);
  const { targets, unresolved } = await resolveTargets(texts, dnsResolver());
  for (const u of unresolved) onUnresolved(u.hostname, u.reason);
  return targets;
}

/**
 * Exclusion files from the configuration plus `--exclude` values; a value that is, or looks like an attempt
 * at, an address or CIDR is parsed as one (so `300.0.0.0/8` is a bad address, not a missing file); anything
 * else is a file (`@name` forces a file). Validated before anything is sent.
 */
export async function loadExclusions(configFiles: readonly string[], flagValues: readonly string[]): Promise<readonly string[]> {
  const extra = flagValues.map((v) => (v.trim().startsWith('@') || exclusionProblem(v.trim()) === null || looksLikeAddress(v) ? v : `@${v}`));
  return readExclusions(configFiles, extra);
}

/** (ip, port) jobs in the plan. */
export function countJobs(targets: readonly string[], ports: number): number {
  return countTargets(targets) * ports;
}
