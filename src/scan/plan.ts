/**
 * A scan plan: everything a scan needs, as plain data, so it can be stored with the scan (resume
 * reuses it) and handed to worker threads (structured clone). Each worker rebuilds its own target
 * iterator, exclusion matcher, rate limiter and probe kit from it (setup.ts).
 *
 * Stored form: the targets go to `scans.targets`, the rest to `scans.options` as `StoredPlanOptions`
 * (version 1). Reading it back checks it against the schema below and lists every problem: a stored plan
 * damaged by hand, by a bug or by a newer version is TOCSIN_SCAN_PLAN_INVALID, never a half-read plan that
 * scans something else than was planned.
 */
import { TocsinError } from '../core/errors.js';
import { DEFAULT_LIMITS, type NetLimits } from '../core/contracts/probe.js';
import { formatPorts, parsePorts, type PortSpec } from './port-spec.js';
import { parseTargetSpec } from './targets.js';

export interface ScanPlan {
  /** Target expressions (addresses, CIDRs, hostnames) after @file/stdin expansion, already validated. */
  readonly targets: readonly string[];
  readonly ports: readonly PortSpec[];
  /** Total jobs in flight (split across workers). */
  readonly concurrency: number;
  readonly limits: NetLimits;
  /** Exclusion entries (addresses/CIDRs), already validated. */
  readonly exclusions: readonly string[];
  /** New connections per second overall; 0 = unlimited (split across workers). */
  readonly rate: number;
  /** New connections per second into one /24 (IPv4) or /64 (IPv6); 0 = unlimited. */
  readonly ratePerNetwork: number;
}

/** Version of the stored options; plans stored before versioning (no `version`) are version 1 too. */
export const PLAN_VERSION = 1;

/** What a resume must reuse, as stored in `scans.options` (JSON). */
export interface StoredPlanOptions {
  readonly version: number;
  /** `formatPorts` text: "443/tls,80/http,8000". */
  readonly ports: string;
  readonly concurrency: number;
  readonly limits: NetLimits;
  readonly exclusions: readonly string[];
  readonly rate: number;
  readonly ratePerNetwork: number;
}

/** Bounds of the numbers: the same as the CLI flags that set them, so a stored plan could have come from the CLI. */
const INT_FIELDS = {
  concurrency: [1, 100_000],
  rate: [0, 10_000_000],
  ratePerNetwork: [0, 10_000_000],
} as const satisfies Record<string, readonly [number, number]>;

const LIMIT_FIELDS = {
  connectTimeoutMs: [1, 3_600_000],
  tlsTimeoutMs: [1, 3_600_000],
  requestTimeoutMs: [1, 3_600_000],
  hostBudgetMs: [1, 3_600_000],
  maxHeaderBytes: [1, 64 * 1024 * 1024],
  maxBodyBytes: [0, 1024 * 1024 * 1024],
  maxRedirects: [0, 100],
} as const satisfies Record<Exclude<keyof NetLimits, 'userAgent'>, readonly [number, number]>;

/** The plan's options as stored with the scan (its targets are stored apart). */
export function planToStored(plan: ScanPlan): StoredPlanOptions {
  return {
    version: PLAN_VERSION,
    ports: formatPorts(plan.ports),
    concurrency: plan.concurrency,
    limits: { ...plan.limits },
    exclusions: [...plan.exclusions],
    rate: plan.rate,
    ratePerNetwork: plan.ratePerNetwork,
  };
}

/**
 * The plan of a stored scan. Throws TOCSIN_SCAN_PLAN_INVALID naming the scan and, as details, every field
 * that does not fit the schema (so one look says whether the row was damaged or written by another version).
 */
export function planFromStored(scanId: string, options: unknown, targets: unknown): ScanPlan {
  const problems: string[] = [];
  const bad = (field: string, why: string): void => {
    problems.push(`${field}: ${why}`);
  };
  const o = isRecord(options) ? options : (bad('options', `expected an object, found ${describe(options)}`), {});

  const version = o.version ?? PLAN_VERSION;
  if (version !== PLAN_VERSION) bad('version', `${describe(version)} is not a plan version this tocsin reads (${PLAN_VERSION}); was it stored by a newer version?`);

  const int = (v: unknown, field: string, [min, max]: readonly [number, number]): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) bad(field, `expected an integer in ${min}..${max}, found ${describe(v)}`);
    return typeof v === 'number' ? v : 0;
  };
  const concurrency = int(o.concurrency, 'concurrency', INT_FIELDS.concurrency);
  const rate = int(o.rate, 'rate', INT_FIELDS.rate);
  const ratePerNetwork = int(o.ratePerNetwork, 'ratePerNetwork', INT_FIELDS.ratePerNetwork);

  let ports: readonly PortSpec[] = [];
  if (typeof o.ports !== 'string') bad('ports', `expected a port list such as "443/tls,80/http", found ${describe(o.ports)}`);
  else {
    try {
      ports = parsePorts(o.ports);
    } catch (e) {
      bad('ports', e instanceof Error ? e.message : String(e));
    }
  }

  const l = isRecord(o.limits) ? o.limits : (bad('limits', `expected an object, found ${describe(o.limits)}`), {});
  const limit = (k: keyof typeof LIMIT_FIELDS): number => int(l[k], `limits.${k}`, LIMIT_FIELDS[k]);
  // A plan stored before the User-Agent was part of it scans with today's default.
  if (l.userAgent !== undefined && typeof l.userAgent !== 'string') bad('limits.userAgent', `expected text, found ${describe(l.userAgent)}`);
  const limits: NetLimits = {
    connectTimeoutMs: limit('connectTimeoutMs'),
    tlsTimeoutMs: limit('tlsTimeoutMs'),
    requestTimeoutMs: limit('requestTimeoutMs'),
    hostBudgetMs: limit('hostBudgetMs'),
    maxHeaderBytes: limit('maxHeaderBytes'),
    maxBodyBytes: limit('maxBodyBytes'),
    maxRedirects: limit('maxRedirects'),
    userAgent: typeof l.userAgent === 'string' ? l.userAgent : DEFAULT_LIMITS.userAgent,
  };

  const exclusions = stringList(o.exclusions, 'exclusions', bad);
  const targetList = stringList(targets, 'targets', bad);
  if (Array.isArray(targets) && targetList.length === 0) bad('targets', 'the list is empty');
  for (const [i, t] of targetList.entries()) {
    try {
      parseTargetSpec(t, `targets[${i}]`);
    } catch (e) {
      bad('targets', e instanceof Error ? e.message : String(e));
      break;
    }
  }

  if (problems.length > 0) {
    throw new TocsinError('TOCSIN_SCAN_PLAN_INVALID', `the stored plan of scan ${scanId} is not usable (${problems.length} problem(s)); it cannot be resumed`, {
      details: problems.slice(0, 20),
    });
  }
  return { targets: targetList, ports, concurrency, limits, exclusions, rate, ratePerNetwork };
}

function isRecord(v: unknown): v is Readonly<Record<string, unknown>> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringList(v: unknown, field: string, bad: (field: string, why: string) => void): readonly string[] {
  if (!Array.isArray(v)) {
    bad(field, `expected a list of text, found ${describe(v)}`);
    return [];
  }
  const items: unknown[] = v;
  const i = items.findIndex((x) => typeof x !== 'string');
  if (i >= 0) {
    bad(field, `entry ${i + 1} is ${describe(items[i])}, not text`);
    return [];
  }
  return items as string[];
}

/** A short, safe description of a value for a message (stored data may be anything). */
function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 39)}…` : s;
}
