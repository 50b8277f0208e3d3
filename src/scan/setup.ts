/**
 * From a plan (plain data) to engine options: the lazy target iterator, the exclusion matcher, the rate
 * limiter and the probe kit. Used identically by the main thread (one worker) and by each worker
 * thread, so a shard sees exactly the same target order as every other shard.
 *
 * Also the CLI-side loading of targets and exclusion files (validated before anything is sent).
 */
import type { Readable } from 'node:stream';
import type { EngineOptions, ScanTarget } from './engine.js';
import type { ScanPlan } from './plan.js';
import { defaultKit } from './default-kit.js';
import { TocsinError } from '../core/errors.js';

export interface SetupCallbacks {
  readonly done: ReadonlySet<string>;
  readonly shard?: { readonly index: number; readonly count: number };
  readonly signal?: AbortSignal;
  onResult: EngineOptions['onResult'];
  onWarning?: EngineOptions['onWarning'];
}

export function engineOptionsFor(plan: ScanPlan, cb: SetupCallbacks): EngineOptions {
  const shards = cb.shard?.count ?? 1;
  const isExcluded = exclusionMatcher(plan.exclusions);
  return {
    targets: expandTargets(plan.targets),
    ports: plan.ports,
    concurrency: Math.max(1, Math.ceil(plan.concurrency / shards)),
    limits: plan.limits,
    kit: defaultKit(),
    isExcluded,
    done: cb.done,
    ...(cb.shard === undefined ? {} : { shard: cb.shard }),
    ...(cb.signal === undefined ? {} : { signal: cb.signal }),
    onResult: cb.onResult,
    ...(cb.onWarning === undefined ? {} : { onWarning: cb.onWarning }),
  };
}

// ---------------------------------------------------------------------------------------------------
// TEMPORARY adapter until src/scan/targets.ts, scope.ts and rate-limit.ts land (another engineer's
// modules): IPv4 addresses and CIDRs only, no rate limiting. Replace with calls into those modules.

function ipv4(s: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const p = [m[1], m[2], m[3], m[4]].map(Number);
  if (p.some((x) => x === undefined || x > 255)) return null;
  return (((p[0] ?? 0) << 24) >>> 0) + ((p[1] ?? 0) << 16) + ((p[2] ?? 0) << 8) + (p[3] ?? 0);
}

function cidr(s: string): { first: number; last: number } | null {
  const [a, b] = s.split('/');
  const base = a === undefined ? null : ipv4(a);
  if (base === null) return null;
  const bits = b === undefined ? 32 : /^\d{1,2}$/.test(b) ? Number(b) : NaN;
  if (!(bits >= 0 && bits <= 32)) return null;
  const size = 2 ** (32 - bits);
  const first = Math.floor(base / size) * size;
  return { first, last: first + size - 1 };
}

function toIp(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function* expandTargets(targets: readonly string[]): Generator<ScanTarget> {
  for (const t of targets) {
    const r = cidr(t);
    if (r === null) continue;
    for (let n = r.first; n <= r.last; n++) yield { ip: toIp(n), hostname: null };
  }
}

function exclusionMatcher(entries: readonly string[]): (ip: string) => boolean {
  const ranges = entries.map(cidr).filter((r): r is { first: number; last: number } => r !== null);
  return (ip) => {
    const n = ipv4(ip);
    return n !== null && ranges.some((r) => n >= r.first && n <= r.last);
  };
}

async function readLines(text: string, source: string): Promise<Array<{ value: string; where: string }>> {
  return text.split(/\r?\n/).map((l, i) => ({ value: l.replace(/#.*/, '').trim(), where: `${source}:${i + 1}` })).filter((x) => x.value !== '');
}

async function readStream(s: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  return Buffer.concat(chunks).toString('utf8');
}

/** Expands @file and - and validates every target; throws TOCSIN_TARGET_INVALID naming it and its line. */
export async function loadTargets(args: readonly string[], stdin: Readable): Promise<readonly string[]> {
  const { readFile } = await import('node:fs/promises');
  const out: string[] = [];
  for (const [i, a] of args.entries()) {
    let items: Array<{ value: string; where: string }>;
    if (a === '-') items = await readLines(await readStream(stdin), 'stdin');
    else if (a.startsWith('@')) items = await readLines(await readFile(a.slice(1), 'utf8'), a.slice(1));
    else items = [{ value: a, where: `argument ${i + 1}` }];
    for (const it of items) {
      if (cidr(it.value) === null) throw new TocsinError('TOCSIN_TARGET_INVALID', `${it.where}: ${JSON.stringify(it.value)} is not an IPv4 address or CIDR`);
      out.push(it.value);
    }
  }
  return out;
}

export async function loadExclusions(files: readonly string[]): Promise<readonly string[]> {
  const { readFile } = await import('node:fs/promises');
  const out: string[] = [];
  for (const f of files) {
    for (const it of await readLines(await readFile(f, 'utf8'), f)) {
      if (cidr(it.value) === null) throw new TocsinError('TOCSIN_TARGET_INVALID', `${it.where}: ${JSON.stringify(it.value)} is not an address or CIDR`);
      out.push(it.value);
    }
  }
  return out;
}

/** (ip, port) jobs in the plan, or null if unknown (hostnames before resolution). */
export function countJobs(targets: readonly string[], ports: number): number | null {
  let n = 0;
  for (const t of targets) {
    const r = cidr(t);
    if (r === null) return null;
    n += r.last - r.first + 1;
  }
  return n * ports;
}
