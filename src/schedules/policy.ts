/**
 * The cadence policy of a schedule (issue 11 §4), pure: which targets are due at a given time, in which order,
 * how many per tick. CyHy's cadence is the default: hosts with an open critical finding daily, the other hosts
 * running a registered product weekly, the rest of the constituency's networks monthly; a verification rescan an
 * organisation asked for comes first of all.
 *
 * What is "critical" and what is "a product host" is data the caller passes in (the headline CVE groups of the
 * products' knowledge bases, the registered product ids): nothing here knows a product by name.
 */
import { TocsinError } from '../core/errors.js';
import { formatIPv4, parseCidr, parseIp, type Cidr, type IpValue } from '../core/ip.js';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** Shortest IPv6 prefix a network sweep expands (the scan's own limit, src/scan/targets-grammar.ts). */
export const MIN_V6_SWEEP_PREFIX = 112;

export type PolicyName = 'cyhy' | 'every';

export interface CadencePolicy {
  /** `cyhy`: per-class cadence; `every`: one cadence for every target (`--every 1d`). */
  readonly name: PolicyName;
  /** Hosts with an open finding on a headline (critical) CVE, or evidence of compromise. */
  readonly criticalEveryMs: number;
  /** Other hosts running a registered product (or with any open finding). */
  readonly productEveryMs: number;
  /** The rest: the scope's networks, swept whole. */
  readonly otherEveryMs: number;
  /** Trigger follow-up campaigns after the scan (for organisations last warned at least this long ago). */
  readonly followUp: boolean;
  readonly followUpAfterMs: number;
  /** Addresses per tick (a network counts its size; one unit is always taken so a big network still progresses). */
  readonly maxTargetsPerTick: number;
  /** The scan's port list (`443`, `443,80`, `8443/tls`). */
  readonly ports: string;
}

export const CYHY_POLICY: CadencePolicy = {
  name: 'cyhy', criticalEveryMs: DAY, productEveryMs: 7 * DAY, otherEveryMs: 30 * DAY,
  followUp: true, followUpAfterMs: 7 * DAY, maxTargetsPerTick: 4096, ports: '443',
};

/** `30m`, `12h`, `1d`, `2w` → milliseconds; TOCSIN_ARG_INVALID otherwise (flag names the option). */
export function parseDuration(raw: string, flag = 'duration'): number {
  const m = /^\s*(\d{1,6})\s*([smhdw])\s*$/i.exec(raw);
  const unit = m === null ? undefined : { s: 1000, m: MINUTE, h: HOUR, d: DAY, w: 7 * DAY }[m[2]!.toLowerCase() as 's' | 'm' | 'h' | 'd' | 'w'];
  const ms = m === null || unit === undefined ? 0 : Number(m[1]) * unit;
  if (ms <= 0) throw new TocsinError('TOCSIN_ARG_INVALID', `${flag} takes a positive duration such as 60s, 30m, 12h, 1d or 2w`);
  return ms;
}

export interface PolicyOptions {
  /** One cadence for everything (policy `every`). */
  readonly everyMs?: number;
  readonly followUp?: boolean;
  readonly followUpAfterMs?: number;
  readonly maxTargetsPerTick?: number;
  readonly ports?: string;
}

/** The policy a schedule is created with. `name` is `cyhy` (default) or `every` (needs everyMs). */
export function makePolicy(name: string, o: PolicyOptions = {}): CadencePolicy {
  if (name !== 'cyhy' && name !== 'every') throw new TocsinError('TOCSIN_ARG_INVALID', '--policy must be cyhy or every');
  if (name === 'every' && o.everyMs === undefined) throw new TocsinError('TOCSIN_ARG_INVALID', 'policy every needs --every DURATION');
  const base = o.everyMs === undefined
    ? CYHY_POLICY
    : { ...CYHY_POLICY, name: 'every' as const, criticalEveryMs: o.everyMs, productEveryMs: o.everyMs, otherEveryMs: o.everyMs };
  const max = o.maxTargetsPerTick ?? base.maxTargetsPerTick;
  if (!Number.isInteger(max) || max < 1 || max > 16_777_216) throw new TocsinError('TOCSIN_ARG_INVALID', '--max-targets takes a whole number from 1 to 16777216');
  const ports = o.ports ?? base.ports;
  if (!/^[0-9a-z/,\s]{1,200}$/i.test(ports)) throw new TocsinError('TOCSIN_ARG_INVALID', '--ports takes a port list such as 443,80 or 8443/tls');
  return {
    ...base,
    followUp: o.followUp ?? base.followUp,
    followUpAfterMs: o.followUpAfterMs ?? base.followUpAfterMs,
    maxTargetsPerTick: max,
    ports,
  };
}

function positive(v: unknown, def: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : def;
}

/**
 * The policy stored as JSON, read back. Stored rows are ours, but a hand-edited row must not make a tick
 * scan every second: every field falls back to the CyHy default when it is missing or absurd.
 */
export function policyFromJson(j: unknown): CadencePolicy {
  const o = typeof j === 'object' && j !== null && !Array.isArray(j) ? (j as Record<string, unknown>) : {};
  const d = CYHY_POLICY;
  return {
    name: o.name === 'every' ? 'every' : 'cyhy',
    criticalEveryMs: Math.max(positive(o.criticalEveryMs, d.criticalEveryMs), MINUTE),
    productEveryMs: Math.max(positive(o.productEveryMs, d.productEveryMs), MINUTE),
    otherEveryMs: Math.max(positive(o.otherEveryMs, d.otherEveryMs), MINUTE),
    followUp: typeof o.followUp === 'boolean' ? o.followUp : d.followUp,
    followUpAfterMs: positive(o.followUpAfterMs, d.followUpAfterMs),
    maxTargetsPerTick: Math.floor(positive(o.maxTargetsPerTick, d.maxTargetsPerTick)),
    ports: typeof o.ports === 'string' && /^[0-9a-z/,\s]{1,200}$/i.test(o.ports) ? o.ports : d.ports,
  };
}

/** A duration for people: `1d`, `36h`, `90m`. */
export function formatDuration(ms: number): string {
  if (ms % (7 * DAY) === 0) return `${ms / (7 * DAY)}w`;
  if (ms % DAY === 0) return `${ms / DAY}d`;
  if (ms % HOUR === 0) return `${ms / HOUR}h`;
  if (ms % MINUTE === 0) return `${ms / MINUTE}m`;
  return `${Math.round(ms / 1000)}s`;
}

/** The policy in one line: `cyhy (critical 1d, product 7d, other 30d; follow-up after 7d; 4096/tick; ports 443)`. */
export function describePolicy(p: CadencePolicy): string {
  const cadence = p.name === 'every' ? `every ${formatDuration(p.otherEveryMs)}` : `critical ${formatDuration(p.criticalEveryMs)}, product ${formatDuration(p.productEveryMs)}, other ${formatDuration(p.otherEveryMs)}`;
  const fu = p.followUp ? `follow-up after ${formatDuration(p.followUpAfterMs)}` : 'no follow-up';
  return `${p.name} (${cadence}; ${fu}; ${p.maxTargetsPerTick}/tick; ports ${p.ports})`;
}

// ---------------------------------------------------------------------------------------------------------------
// What is due.

export type TargetClass = 'verification' | 'critical' | 'product' | 'other';

/** Order of the classes in a tick: a verification request first, then critical hosts, ... */
export const CLASS_ORDER: readonly TargetClass[] = ['verification', 'critical', 'product', 'other'];

/** What the store knows about one host in the scope (a host with a finding or a product observation). */
export interface HostFacts {
  readonly ip: string;
  /** CVE ids of its open findings. */
  readonly openCves: readonly string[];
  /** An open compromise finding. */
  readonly compromised: boolean;
  /** Product id of its latest observation that named one, or null. */
  readonly product: string | null;
  /** Last time it was scanned (by anyone), or null. */
  readonly lastScannedAt: Date | null;
}

export interface NetworkFacts {
  /** A CIDR of the scope. */
  readonly cidr: string;
  /** Last time this schedule swept it whole, or null. */
  readonly lastScannedAt: Date | null;
}

export interface VerificationRequest {
  readonly ip: string;
  readonly requestedAt: Date;
}

/** From the products' data: which CVEs are critical (headline groups) and which product ids exist. */
export interface Knowledge {
  readonly criticalCves: ReadonlySet<string>;
  readonly productIds: ReadonlySet<string>;
}

export interface DueTarget {
  /** An address or a CIDR, as the scan takes it. */
  readonly target: string;
  readonly cls: TargetClass;
  /** When it became due (now for a verification request). */
  readonly dueAt: Date;
  readonly addresses: number;
}

export interface DuePlan {
  /** What this tick scans, in priority order, within the cap. */
  readonly due: readonly DueTarget[];
  /** Due but left for the next tick (the cap). */
  readonly deferred: number;
  /** Hosts inside a network of `due` (they are scanned with it; they count as served). */
  readonly covered: readonly string[];
  /** The earliest time something not due now becomes due (null: nothing known). */
  readonly nextDueAt: Date | null;
  /** Networks that cannot be swept (an IPv6 prefix shorter than /112), with why. */
  readonly skipped: readonly { readonly target: string; readonly reason: string }[];
}

export function classify(h: HostFacts, k: Knowledge): Exclude<TargetClass, 'verification'> {
  if (h.compromised || h.openCves.some((c) => k.criticalCves.has(c))) return 'critical';
  if (h.openCves.length > 0 || (h.product !== null && k.productIds.has(h.product))) return 'product';
  return 'other';
}

export function cadenceOf(cls: TargetClass, p: CadencePolicy): number {
  switch (cls) {
    case 'verification': return 0;
    case 'critical': return p.criticalEveryMs;
    case 'product': return p.productEveryMs;
    case 'other': return p.otherEveryMs;
  }
}

function sizeOf(c: Cidr): number {
  return c.family === 4 ? c.last - c.first + 1 : Number(c.last - c.first + 1n);
}

function inside(ip: IpValue, c: Cidr): boolean {
  if (ip.family !== c.family) return false;
  return ip.family === 4 ? ip.value >= (c.first as number) && ip.value <= (c.last as number) : ip.value >= (c.first as bigint) && ip.value <= (c.last as bigint);
}

export interface DueInput {
  readonly hosts: readonly HostFacts[];
  readonly networks: readonly NetworkFacts[];
  readonly verification: readonly VerificationRequest[];
  readonly knowledge: Knowledge;
  readonly policy: CadencePolicy;
  readonly now: Date;
}

/**
 * The targets due at `now`, ordered by class (CLASS_ORDER), then by how long they have been due, then by text;
 * capped at `policy.maxTargetsPerTick` addresses. A target never scanned is due now. A verification request is
 * due until the host has been scanned after it was made.
 */
export function dueTargets(input: DueInput): DuePlan {
  const { policy, now, knowledge } = input;
  const t = now.getTime();
  const candidates: DueTarget[] = [];
  const skipped: { target: string; reason: string }[] = [];
  let next: number | null = null;
  const later = (at: number): void => {
    if (next === null || at < next) next = at;
  };
  const verified = new Set<string>();
  const lastOf = new Map(input.hosts.map((h) => [h.ip, h.lastScannedAt]));
  for (const v of input.verification) {
    const last = lastOf.get(v.ip) ?? null;
    if (last !== null && last.getTime() >= v.requestedAt.getTime()) continue;
    if (verified.has(v.ip) || parseIp(v.ip) === null) continue;
    verified.add(v.ip);
    candidates.push({ target: v.ip, cls: 'verification', dueAt: v.requestedAt, addresses: 1 });
  }
  for (const h of input.hosts) {
    if (verified.has(h.ip) || parseIp(h.ip) === null) continue;
    const cls = classify(h, knowledge);
    const dueAt = h.lastScannedAt === null ? t : h.lastScannedAt.getTime() + cadenceOf(cls, policy);
    if (dueAt <= t) candidates.push({ target: h.ip, cls, dueAt: new Date(dueAt), addresses: 1 });
    else later(dueAt);
  }
  const cidrs = new Map<string, Cidr>();
  for (const n of input.networks) {
    const c = parseCidr(n.cidr);
    if (typeof c === 'string') {
      skipped.push({ target: n.cidr, reason: c });
      continue;
    }
    if (c.family === 6 && c.prefix < MIN_V6_SWEEP_PREFIX) {
      skipped.push({ target: n.cidr, reason: `an IPv6 network shorter than /${MIN_V6_SWEEP_PREFIX} is not swept (its known hosts are scanned)` });
      continue;
    }
    const dueAt = n.lastScannedAt === null ? t : n.lastScannedAt.getTime() + policy.otherEveryMs;
    if (dueAt <= t) {
      cidrs.set(n.cidr, c);
      candidates.push({ target: n.cidr, cls: 'other', dueAt: new Date(dueAt), addresses: sizeOf(c) });
    } else later(dueAt);
  }
  const rank = (c: TargetClass): number => CLASS_ORDER.indexOf(c);
  candidates.sort((a, b) => rank(a.cls) - rank(b.cls) || a.dueAt.getTime() - b.dueAt.getTime() || (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));

  const due: DueTarget[] = [];
  let used = 0;
  let deferred = 0;
  for (const c of candidates) {
    if (due.length > 0 && used + c.addresses > policy.maxTargetsPerTick) {
      deferred++;
      continue;
    }
    due.push(c);
    used += c.addresses;
  }
  // A host inside a network swept this tick is scanned with it: listing it again would only cost a duplicate.
  const nets = due.filter((d) => cidrs.has(d.target)).map((d) => cidrs.get(d.target)!);
  const covered: string[] = [];
  const kept = due.filter((d) => {
    if (cidrs.has(d.target)) return true;
    const ip = parseIp(d.target);
    if (ip !== null && nets.some((n) => inside(ip, n))) {
      covered.push(d.target);
      return false;
    }
    return true;
  });
  if (deferred > 0) later(t);
  const nextDueAt: number | null = next;
  return { due: kept, deferred, covered, nextDueAt: nextDueAt === null ? null : new Date(nextDueAt), skipped };
}

/** Most sweep blocks one network is split into (a /8 at 4,096 addresses per tick is 4,096 blocks). */
export const MAX_SWEEP_BLOCKS = 65_536;

/**
 * A network as the blocks a tick sweeps: itself when it fits in `maxAddresses`, else aligned sub-networks of the
 * largest power of two that fits (a /16 at 4,096 per tick: sixteen /20s), each with its own cadence. Without this a
 * /8 would be one target, scanned whole in one tick whatever the cap. Unparsable text is returned as it is (the
 * policy reports it as skipped); an IPv6 network is never split (only /112 and longer are swept).
 */
export function sweepBlocks(cidr: string, maxAddresses: number): string[] {
  const c = parseCidr(cidr);
  if (typeof c === 'string' || c.family === 6) return [cidr];
  const size = c.last - c.first + 1;
  if (size <= maxAddresses) return [cidr];
  const bits = Math.max(Math.floor(Math.log2(Math.max(maxAddresses, 1))), Math.ceil(Math.log2(size / MAX_SWEEP_BLOCKS)));
  const block = 2 ** bits;
  const out: string[] = [];
  for (let a = c.first; a <= c.last; a += block) out.push(`${formatIPv4(a)}/${32 - bits}`);
  return out;
}
