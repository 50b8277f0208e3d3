/**
 * Pure IP address and CIDR maths (no I/O, imports nothing of ours).
 *
 * IPv4 addresses are numbers (0 .. 2^32-1, exact in a double, fast), IPv6 addresses are bigints.
 * Range sets (sorted, merged, non-overlapping [first, last] pairs) give exact counts, binary-search
 * membership, subtraction and index → address mapping without ever materialising a /8.
 *
 * Why our own code rather than ipaddr.js or net.BlockList: parsing is the small part; what the scanner
 * needs is numeric range arithmetic (merge, subtract, count, i-th address) that neither offers
 * (BlockList answers membership only, by scanning its rules linearly; ipaddr.js has no ranges). The
 * parsers here are strict (no octal/shorthand IPv4, no zone ids) and are checked against Node's own
 * net.isIPv4/isIPv6 in the tests.
 */

export type IpFamily = 4 | 6;

/** A parsed address. */
export type IpValue = { readonly family: 4; readonly value: number } | { readonly family: 6; readonly value: bigint };

export const V4_MAX = 0xffffffff;
export const V6_MAX = (1n << 128n) - 1n;

/** Why a dotted-quad-looking string is not an IPv4 address, or null if it is one. */
export function ipv4Problem(s: string): string | null {
  const parts = s.split('.');
  if (parts.length !== 4) return `has ${parts.length} parts, an IPv4 address has 4`;
  for (let i = 0; i < 4; i++) {
    const p = parts[i] as string;
    if (p === '') return `part ${i + 1} is empty`;
    if (!/^\d+$/.test(p)) return `part ${i + 1} ('${p}') is not a number`;
    if (p.length > 1 && p.startsWith('0')) return `part ${i + 1} ('${p}') has a leading zero (ambiguous: octal?)`;
    if (p.length > 3 || Number(p) > 255) return `part ${i + 1} is ${p}, must be 0-255`;
  }
  return null;
}

/** Strict dotted quad → number, or null. */
export function parseIPv4(s: string): number | null {
  // fast path for the common case; ipv4Problem gives the reason when this fails
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return null;
      n = n * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return null; // leading zero
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return null;
    } else return null;
  }
  if (dots !== 3 || digits === 0) return null;
  return n * 256 + part;
}

export function formatIPv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Strict IPv6 (RFC 4291 text forms, optional trailing dotted quad; no zone id, no brackets) → bigint, or null. */
export function parseIPv6(s: string): bigint | null {
  if (s.length < 2 || s.length > 45) return null;
  let text = s;
  let tail: number | null = null;
  const lastColon = text.lastIndexOf(':');
  if (lastColon < 0) return null;
  if (text.indexOf('.', lastColon) >= 0) {
    tail = parseIPv4(text.slice(lastColon + 1));
    if (tail === null) return null;
    text = `${text.slice(0, lastColon + 1)}0:0`; // placeholder groups, replaced below
  }
  const dbl = text.indexOf('::');
  if (dbl >= 0 && text.indexOf('::', dbl + 1) >= 0) return null;
  const groups: number[] = [];
  const parseGroups = (t: string): boolean => {
    if (t === '') return true;
    for (const g of t.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return false;
      groups.push(parseInt(g, 16));
    }
    return true;
  };
  let head: number[];
  if (dbl >= 0) {
    if (!parseGroups(text.slice(0, dbl))) return null;
    head = groups.splice(0);
    if (!parseGroups(text.slice(dbl + 2))) return null;
    const missing = 8 - head.length - groups.length;
    if (missing < 1) return null;
    groups.unshift(...head, ...new Array<number>(missing).fill(0));
  } else {
    if (!parseGroups(text)) return null;
    if (groups.length !== 8) return null;
  }
  let v = 0n;
  for (let i = 0; i < 8; i++) v = (v << 16n) | BigInt(groups[i] as number);
  if (tail !== null) v = (v & ~0xffffffffn) | BigInt(tail);
  return v;
}

/** RFC 5952 text: lower case, longest run (≥2) of zero groups compressed; IPv4-mapped as ::ffff:a.b.c.d. */
export function formatIPv6(v: bigint): string {
  if (v >> 32n === 0xffffn) return `::ffff:${formatIPv4(Number(v & 0xffffffffn))}`;
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((v >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]): string => a.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** Parses either family (IPv6 may be given in brackets). */
export function parseIp(s: string): IpValue | null {
  const v4 = parseIPv4(s);
  if (v4 !== null) return { family: 4, value: v4 };
  const inner = s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
  const v6 = parseIPv6(inner);
  return v6 === null ? null : { family: 6, value: v6 };
}

export function formatIp(ip: IpValue): string {
  return ip.family === 4 ? formatIPv4(ip.value) : formatIPv6(ip.value);
}

/** Canonical text of an address (RFC 5952 for IPv6), or null if it is not one. */
export function normalizeIp(s: string): string | null {
  const ip = parseIp(s);
  return ip === null ? null : formatIp(ip);
}

export type Cidr =
  | { readonly family: 4; readonly prefix: number; readonly first: number; readonly last: number }
  | { readonly family: 6; readonly prefix: number; readonly first: bigint; readonly last: bigint };

/** Why `addr/prefix` is not a CIDR, or the CIDR. Host bits are masked off (10.0.0.5/24 = 10.0.0.0/24). */
export function parseCidr(s: string): Cidr | string {
  const slash = s.indexOf('/');
  if (slash < 0) return 'has no /prefix';
  const addr = s.slice(0, slash);
  const p = s.slice(slash + 1);
  const ip = parseIp(addr);
  if (ip === null) {
    if (/^[\d.]+$/.test(addr)) return `'${addr}' is not an IPv4 address (${ipv4Problem(addr) ?? 'invalid'})`;
    return `'${addr}' is not an IPv4 or IPv6 address`;
  }
  const maxBits = ip.family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(p) || Number(p) > maxBits) return `prefix '/${p}' must be 0-${maxBits}`;
  const prefix = Number(p);
  if (ip.family === 4) {
    const size = 2 ** (32 - prefix);
    const first = Math.floor(ip.value / size) * size;
    return { family: 4, prefix, first, last: first + size - 1 };
  }
  const hostBits = BigInt(128 - prefix);
  const first = (ip.value >> hostBits) << hostBits;
  return { family: 6, prefix, first, last: first + (1n << hostBits) - 1n };
}

/** Key of the /24 (IPv4) or /64 (IPv6) network of an address, for per-network rate limits; null if not an address. */
export function networkKey(ip: string): number | string | null {
  const v4 = parseIPv4(ip);
  if (v4 !== null) return Math.floor(v4 / 256);
  const inner = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  const v6 = parseIPv6(inner);
  return v6 === null ? null : `6:${(v6 >> 64n).toString(16)}`;
}

// ---------------------------------------------------------------------------------------------------
// Range sets, generic over number (IPv4) and bigint (IPv6).

/** Arithmetic the range code needs, so one implementation serves both families. */
interface Ops<T extends number | bigint> {
  inc(x: T): T;
  dec(x: T): T;
  /** Count of a..b inclusive, as bigint (IPv6 ranges can exceed 2^53). */
  span(a: T, b: T): bigint;
  add(x: T, n: bigint): T;
  readonly max: T;
}

const OPS4: Ops<number> = {
  inc: (x) => x + 1,
  dec: (x) => x - 1,
  span: (a, b) => BigInt(b - a + 1),
  add: (x, n) => x + Number(n),
  max: V4_MAX,
};
const OPS6: Ops<bigint> = {
  inc: (x) => x + 1n,
  dec: (x) => x - 1n,
  span: (a, b) => b - a + 1n,
  add: (x, n) => x + n,
  max: V6_MAX,
};

/**
 * An immutable set of addresses of one family as sorted, merged ranges.
 * `starts[i]..ends[i]` inclusive; `offsets[i]` = number of addresses before range i.
 */
export class RangeSet<T extends number | bigint> {
  private constructor(
    private readonly ops: Ops<T>,
    readonly starts: readonly T[],
    readonly ends: readonly T[],
    private readonly offsets: readonly bigint[],
    /** Number of addresses in the set (exact). */
    readonly size: bigint,
  ) {}

  /** Sorts and merges (overlapping or adjacent) ranges. */
  static of<T extends number | bigint>(ops: Ops<T>, ranges: ReadonlyArray<readonly [T, T]>): RangeSet<T> {
    const sorted = ranges.filter((r) => r[0] <= r[1]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const starts: T[] = [];
    const ends: T[] = [];
    for (const [a, b] of sorted) {
      const n = ends.length;
      const prevEnd = n > 0 ? (ends[n - 1] as T) : null;
      if (prevEnd !== null && (prevEnd >= a || (prevEnd < ops.max && ops.inc(prevEnd) === a))) {
        if (b > prevEnd) ends[n - 1] = b;
      } else {
        starts.push(a);
        ends.push(b);
      }
    }
    const offsets: bigint[] = [];
    let total = 0n;
    for (let i = 0; i < starts.length; i++) {
      offsets.push(total);
      total += ops.span(starts[i] as T, ends[i] as T);
    }
    return new RangeSet(ops, starts, ends, offsets, total);
  }

  /** Membership by binary search: O(log ranges). */
  has(x: T): boolean {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (x < (this.starts[mid] as T)) hi = mid - 1;
      else if (x > (this.ends[mid] as T)) lo = mid + 1;
      else return true;
    }
    return false;
  }

  /** The i-th address in ascending order (0 ≤ i < size). */
  at(i: bigint): T {
    let lo = 0;
    let hi = this.offsets.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if ((this.offsets[mid] as bigint) <= i) lo = mid;
      else hi = mid - 1;
    }
    return this.ops.add(this.starts[lo] as T, i - (this.offsets[lo] as bigint));
  }

  /** This set minus another (both sorted/merged): linear merge. */
  minus(other: RangeSet<T>): RangeSet<T> {
    const out: Array<[T, T]> = [];
    let j = 0;
    for (let i = 0; i < this.starts.length; i++) {
      let a = this.starts[i] as T;
      const b = this.ends[i] as T;
      while (j < other.starts.length && (other.ends[j] as T) < a) j++;
      let k = j;
      let open = true;
      while (k < other.starts.length && (other.starts[k] as T) <= b) {
        const xs = other.starts[k] as T;
        const xe = other.ends[k] as T;
        if (xs > a) out.push([a, this.ops.dec(xs)]);
        if (xe >= b) {
          open = false;
          break;
        }
        a = this.ops.inc(xe);
        k++;
      }
      if (open) out.push([a, b]);
    }
    return RangeSet.of(this.ops, out);
  }

  /** Addresses in both sets. */
  intersect(other: RangeSet<T>): RangeSet<T> {
    const out: Array<[T, T]> = [];
    let i = 0;
    let j = 0;
    while (i < this.starts.length && j < other.starts.length) {
      const a = (this.starts[i] as T) > (other.starts[j] as T) ? (this.starts[i] as T) : (other.starts[j] as T);
      const b = (this.ends[i] as T) < (other.ends[j] as T) ? (this.ends[i] as T) : (other.ends[j] as T);
      if (a <= b) out.push([a, b]);
      if ((this.ends[i] as T) < (other.ends[j] as T)) i++;
      else j++;
    }
    return RangeSet.of(this.ops, out);
  }

  get rangeCount(): number {
    return this.starts.length;
  }
}

export type V4Set = RangeSet<number>;
export type V6Set = RangeSet<bigint>;

export function v4Set(ranges: ReadonlyArray<readonly [number, number]>): V4Set {
  return RangeSet.of(OPS4, ranges);
}

export function v6Set(ranges: ReadonlyArray<readonly [bigint, bigint]>): V6Set {
  return RangeSet.of(OPS6, ranges);
}

// ---------------------------------------------------------------------------------------------------
// IPv4 inside IPv6, and lenient spellings: what an exclusion list must see through.

/** ::ffff:0:0/96, IPv4-mapped: a connect() to ::ffff:a.b.c.d on a dual-stack socket reaches the IPv4 host a.b.c.d. */
export const V4_MAPPED_BASE = 0xffffn << 32n;

/**
 * Every /96 whose low 32 bits name an IPv4 host, by some path: IPv4-compatible ::a.b.c.d (deprecated, not routed
 * by Linux, but still what a list may say), IPv4-mapped ::ffff:a.b.c.d (routed to the IPv4 host by the kernel),
 * IPv4-translated ::ffff:0:a.b.c.d (SIIT) and the NAT64 well-known prefix 64:ff9b::a.b.c.d (reaches the IPv4 host
 * on a network with NAT64). An exclusion of a.b.c.d covers all of them, and an exclusion written in any of them
 * covers a.b.c.d: never contacting an excluded host matters more than the rare over-exclusion.
 */
export const V4_EMBEDDING_BASES: readonly bigint[] = [0n, V4_MAPPED_BASE, 0xffffn << 48n, 0x64ff9bn << 96n];

/** The IPv4 address of an IPv4-mapped IPv6 address (::ffff:a.b.c.d), or null for any other IPv6 address. */
export function unmapIPv4(v: bigint): number | null {
  return v >> 32n === 0xffffn ? Number(v & 0xffffffffn) : null;
}

/**
 * An address in one canonical family: IPv4-mapped IPv6 becomes the IPv4 address it reaches, so that
 * `::ffff:192.0.2.1` and `192.0.2.1` are one host (one scan, one record, one rate-limit bucket).
 */
export function canonicalIp(ip: IpValue): IpValue {
  if (ip.family === 6) {
    const v4 = unmapIPv4(ip.value);
    if (v4 !== null) return { family: 4, value: v4 };
  }
  return ip;
}

/**
 * The IPv4 ranges hidden in an IPv6 range through the embedding /96s, and the IPv6 aliases of an IPv4 range:
 * together they close a pair of range lists under "is the same IPv4 host".
 */
export function closeUnderV4Embedding(
  r4: ReadonlyArray<readonly [number, number]>,
  r6: ReadonlyArray<readonly [bigint, bigint]>,
): { r4: Array<[number, number]>; r6: Array<[bigint, bigint]> } {
  const out4: Array<[number, number]> = r4.map(([a, b]) => [a, b]);
  for (const [a, b] of r6) {
    for (const base of V4_EMBEDDING_BASES) {
      const top = base + 0xffffffffn;
      const lo = a > base ? a : base;
      const hi = b < top ? b : top;
      if (lo <= hi) out4.push([Number(lo - base), Number(hi - base)]);
    }
  }
  const out6: Array<[bigint, bigint]> = r6.map(([a, b]) => [a, b]);
  for (const [a, b] of out4) for (const base of V4_EMBEDDING_BASES) out6.push([base + BigInt(a), base + BigInt(b)]);
  return { r4: out4, r6: out6 };
}

/**
 * Every number a dotted quad may mean, for lists written by other tools: strict decimal, and for zero-padded parts
 * ("010.001.002.003", common in sorted lists) both the decimal reading (10.1.2.3) and the octal one that
 * inet_aton() gives (8.1.2.3) when every padded part is valid octal. Empty when it is no dotted quad at all.
 * Only for exclusion lists (where reading too much is the safe side); targets stay strict.
 */
export function ipv4Readings(s: string): number[] {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,6}$/.test(p))) return [];
  const dec = parts.map((p) => Number(p));
  if (dec.some((n) => n > 255)) return [];
  const value = (q: readonly number[]): number => q.reduce((acc, x) => acc * 256 + x, 0);
  const out = [value(dec)];
  const padded = parts.some((p) => p.length > 1 && p.startsWith('0'));
  if (padded && parts.every((p) => !(p.length > 1 && p.startsWith('0')) || /^[0-7]+$/.test(p))) {
    const oct = parts.map((p) => (p.length > 1 && p.startsWith('0') ? parseInt(p, 8) : Number(p)));
    if (oct.every((n) => n <= 255)) {
      const v = value(oct);
      if (v !== out[0]) out.push(v);
    }
  }
  return out;
}

/**
 * Every address an exclusion-list entry may mean (see ipv4Readings), each in strict text form; IPv6 with an
 * embedded zero-padded dotted quad too. Empty when it is no address.
 */
export function addressReadings(s: string): string[] {
  const strict = parseIp(s);
  if (strict !== null) return [formatIp(strict)];
  const inner = s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
  const colon = inner.lastIndexOf(':');
  const head = colon < 0 ? '' : inner.slice(0, colon + 1);
  const out: string[] = [];
  for (const n of ipv4Readings(inner.slice(colon + 1))) {
    const text = `${head}${formatIPv4(n)}`;
    const ip = parseIp(text);
    if (ip !== null) out.push(formatIp(ip));
  }
  return out;
}
