/**
 * Most-specific-range lookup over address ranges of one family: build once, query many.
 *
 * Why sorted elementary segments and not a binary trie: the registry holds RPSL inetnum ranges that need not be
 * CIDR-aligned and may overlap partially, which a prefix trie cannot hold without splitting them; a sweep over the
 * sorted range ends cuts the address line into segments where the set of containing ranges is constant, so a query
 * is one binary search (about 18 steps for 100,000 networks) and answers every containing range, most specific
 * first, which the explanation needs anyway. IPv4 keys sit in a Float64Array (exact up to 2^53, no boxing); IPv6
 * keys are bigints, compared only during the binary search (measured in bench/attribution.ts).
 */

export interface Range<T extends number | bigint> {
  readonly first: T;
  readonly last: T;
}

/** Every segment's containing ranges, as positions in the caller's array, most specific (smallest) first. */
export interface RangeIndex<T extends number | bigint> {
  /** Containing ranges of `x`, most specific first; an empty array when none contains it. */
  lookup(x: T): readonly number[];
  /** Number of segments (for the benchmark's numbers). */
  readonly segments: number;
}

const NONE: readonly number[] = Object.freeze([]);

/**
 * Sweep: each range opens at `first` and closes at `last + 1`; between consecutive event points the open set is
 * constant. `rank` orders ranges of equal size (smaller rank = preferred), so a set's order is total and
 * deterministic. Identical sets are stored once (a parent's set reappears after each child closes).
 */
function segmentsOf<T extends number | bigint>(
  ranges: readonly Range<T>[],
  inc: (x: T) => T,
  size: (r: Range<T>) => T,
  rank: readonly number[],
): { points: T[]; setOf: number[]; sets: (readonly number[])[] } {
  const n = ranges.length;
  const cmp = (a: T, b: T): number => (a < b ? -1 : a > b ? 1 : 0);
  const byFirst = [...ranges.keys()].sort((a, b) => cmp(ranges[a]!.first, ranges[b]!.first));
  const ends = ranges.map((r) => inc(r.last));
  const byEnd = [...ranges.keys()].sort((a, b) => cmp(ends[a]!, ends[b]!));
  // Order within a set: smaller range first, then the caller's rank.
  const order = (a: number, b: number): number => cmp(size(ranges[a]!), size(ranges[b]!)) || rank[a]! - rank[b]!;
  const active = new Set<number>();
  const interned = new Map<string, number>();
  const sets: (readonly number[])[] = [NONE];
  interned.set('', 0);
  const points: T[] = [];
  const setOf: number[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < n) {
    const nextOpen = i < n ? ranges[byFirst[i]!]!.first : null;
    const nextClose = j < n ? ends[byEnd[j]!]! : null;
    const p = nextOpen === null ? (nextClose as T) : nextClose === null ? nextOpen : nextOpen < nextClose ? nextOpen : nextClose;
    while (j < n && ends[byEnd[j]!] === p) active.delete(byEnd[j++]!);
    while (i < n && ranges[byFirst[i]!]!.first === p) active.add(byFirst[i++]!);
    const members = [...active].sort(order);
    const key = members.join(',');
    let id = interned.get(key);
    if (id === undefined) {
      id = sets.length;
      sets.push(Object.freeze(members));
      interned.set(key, id);
    }
    if (setOf.length > 0 && setOf[setOf.length - 1] === id) continue; // same set as the segment before: merge
    points.push(p);
    setOf.push(id);
  }
  return { points, setOf, sets };
}

/**
 * IPv4: keys 0..2^32-1 as numbers, plus a first-level table by the address's top 16 bits that narrows the binary
 * search to the segments of one /16 (usually a handful): with 100,000 networks a plain binary search takes ~18
 * dependent reads spread over a 1.4 MB array, each a likely cache miss; this takes two or three.
 */
export function buildV4Index(ranges: readonly Range<number>[], rank: readonly number[]): RangeIndex<number> {
  const { points, setOf, sets } = segmentsOf(ranges, (x) => x + 1, (r) => r.last - r.first, rank);
  const keys = Float64Array.from(points);
  const ids = Int32Array.from(setOf);
  // below[b]: the index of the last point <= b * 65536 (-1: none), for b = 0..65536.
  const below = new Int32Array(65537);
  let p = -1;
  for (let b = 0; b <= 65536; b++) {
    const start = b * 65536;
    while (p + 1 < keys.length && keys[p + 1]! <= start) p++;
    below[b] = p;
  }
  return {
    segments: keys.length,
    lookup(x: number): readonly number[] {
      // The last point <= x lies between below[b] and below[b + 1] (x < the next bucket's start).
      const b = Math.floor(x / 65536);
      let lo = below[b]!;
      let hi = below[b + 1]!;
      if (hi < 0) return NONE;
      if (lo < 0) lo = 0;
      if (keys[lo]! > x) return NONE;
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (keys[mid]! <= x) lo = mid;
        else hi = mid - 1;
      }
      return sets[ids[lo]!]!;
    },
  };
}

/** IPv6: keys 0..2^128-1 as bigints. */
export function buildV6Index(ranges: readonly Range<bigint>[], rank: readonly number[]): RangeIndex<bigint> {
  const { points, setOf, sets } = segmentsOf(ranges, (x) => x + 1n, (r) => r.last - r.first, rank);
  const ids = Int32Array.from(setOf);
  return {
    segments: points.length,
    lookup(x: bigint): readonly number[] {
      let lo = 0;
      let hi = points.length - 1;
      if (hi < 0 || x < points[0]!) return NONE;
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (points[mid]! <= x) lo = mid;
        else hi = mid - 1;
      }
      return sets[ids[lo]!]!;
    },
  };
}
