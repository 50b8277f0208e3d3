/**
 * Expansion: validated target texts → the deduplicated, lazily iterated (ip, hostname) pairs the engine
 * scans. Deterministic, so every worker thread sees the same order; memory is proportional to the number
 * of given entries, never to the number of addresses.
 */
import { TocsinError } from '../core/errors.js';
import { V4_MAPPED_BASE, formatIPv4, formatIPv6, v4Set, v6Set, type V4Set, type V6Set } from '../core/ip.js';
import { addressRanges } from './scope.js';
import { parseTarget } from './targets-grammar.js';

/** Default cap on the total number of addresses a target list may expand to (a /8). */
export const DEFAULT_MAX_ADDRESSES = 2 ** 24;

/** One address to scan and the name it was given as (sent as SNI and Host), if any. */
export interface ResolvedTarget {
  readonly ip: string;
  readonly hostname: string | null;
}

export interface TargetSetOptions {
  /**
   * 'spread' (default): a fixed permutation (stride coprime to the total) so consecutive targets fall in
   * different /24s, which keeps per-network rate limits from stalling the scan; 'sequential': ascending.
   * Both are deterministic: every worker thread sees the same order.
   */
  readonly order?: 'spread' | 'sequential';
  /** Throws TOCSIN_TARGET_INVALID above this many addresses (default DEFAULT_MAX_ADDRESSES). */
  readonly maxAddresses?: number;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/**
 * The deduplicated, lazily expanded targets. Pinned names (name=ip) come first, in the order given,
 * one per address (the first name given for an address wins: results are keyed by ip and port);
 * then every other address of the IPv4 and IPv6 addresses, ranges and CIDRs, each once.
 * Bare host names are not yielded (resolve them first: targets-resolve.ts). Exclusions are not applied
 * here: the engine checks every address against them before it is contacted.
 */
export class TargetSet implements Iterable<ResolvedTarget> {
  /** Exact number of (ip, hostname) pairs the iterator yields. */
  readonly size: number;

  private constructor(
    private readonly pinned: readonly ResolvedTarget[],
    private readonly v4: V4Set,
    private readonly v6: V6Set,
    private readonly order: 'spread' | 'sequential',
  ) {
    this.size = pinned.length + Number(v4.size) + Number(v6.size);
  }

  /** From canonical or raw target texts (invalid ones throw TOCSIN_TARGET_INVALID, naming the list position). */
  static from(targets: readonly string[], opts: TargetSetOptions = {}): TargetSet {
    const bare: string[] = [];
    const pinned: ResolvedTarget[] = [];
    const pinnedIps = new Set<string>();
    for (const [i, raw] of targets.entries()) {
      const p = parseTarget(raw.trim());
      if ('problem' in p) throw new TocsinError('TOCSIN_TARGET_INVALID', `target ${i + 1}: ${p.problem}`);
      if (p.kind === 'pinned') {
        const eq = p.text.indexOf('=');
        const ip = p.text.slice(eq + 1);
        if (!pinnedIps.has(ip)) {
          pinnedIps.add(ip);
          pinned.push({ ip, hostname: p.text.slice(0, eq) });
        }
      } else if (p.kind !== 'hostname') bare.push(p.text);
    }
    const { r4, r6 } = addressRanges(bare);
    let s6 = v6Set(r6);
    // Ranges mixing IPv4-mapped and other IPv6 (or plans stored before mapped forms were canonicalised): the
    // mapped part is moved to IPv4, so a host given both ways is scanned once, as IPv4.
    const mapped = s6.intersect(v6Set([[V4_MAPPED_BASE, V4_MAPPED_BASE + 0xffffffffn]]));
    if (mapped.size > 0n) {
      s6 = s6.minus(mapped);
      for (let i = 0; i < mapped.rangeCount; i++) {
        r4.push([Number((mapped.starts[i] as bigint) - V4_MAPPED_BASE), Number((mapped.ends[i] as bigint) - V4_MAPPED_BASE)]);
      }
    }
    let s4 = v4Set(r4);
    const max = opts.maxAddresses ?? DEFAULT_MAX_ADDRESSES;
    const total = s4.size + s6.size + BigInt(pinned.length);
    if (total > BigInt(max)) {
      throw new TocsinError(
        'TOCSIN_TARGET_INVALID',
        `the targets expand to ${total} addresses, more than the limit of ${max}; split the scan or narrow the ranges`,
      );
    }
    // a pinned address is scanned once, with its name: take it out of the bare ranges
    const p = addressRanges([...pinnedIps]);
    if (p.r4.length > 0) s4 = s4.minus(v4Set(p.r4));
    if (p.r6.length > 0) s6 = s6.minus(v6Set(p.r6));
    return new TargetSet(pinned, s4, s6, opts.order ?? 'spread');
  }

  *[Symbol.iterator](): Iterator<ResolvedTarget> {
    for (const p of this.pinned) yield p;
    const n4 = Number(this.v4.size);
    const n = n4 + Number(this.v6.size);
    if (n === 0) return;
    let stride = 1;
    if (this.order === 'spread' && n > 2) {
      stride = Math.max(1, Math.floor(n * 0.6180339887)) | 1;
      while (gcd(stride, n) !== 1) stride += 2;
    }
    let j = 0;
    for (let i = 0; i < n; i++) {
      yield j < n4
        ? { ip: formatIPv4(this.v4.at(BigInt(j))), hostname: null }
        : { ip: formatIPv6(this.v6.at(BigInt(j - n4))), hostname: null };
      j += stride;
      if (j >= n) j -= n;
    }
  }
}

/** The engine's lazy target iterator for a plan's target texts. */
export function expandTargets(targets: readonly string[], opts: TargetSetOptions = {}): TargetSet {
  return TargetSet.from(targets, opts);
}

/** Exact number of addresses (pairs) `expandTargets` yields, for progress totals. */
export function countTargets(targets: readonly string[], opts: TargetSetOptions = {}): number {
  return TargetSet.from(targets, opts).size;
}
