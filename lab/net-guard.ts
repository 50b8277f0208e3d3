/**
 * Pure address logic of the lab: IPv4 ↔ integer, and the loopback rule. The lab listens on 0.0.0.0 so
 * that every 127.x.y.z answers; these checks are what keeps it from ever serving anything off-loopback.
 */

/** 127.0.0.0/8 as integers. */
const LOOPBACK_FIRST = 0x7f000000;
const LOOPBACK_LAST = 0x7fffffff;

/** Parses dotted-quad IPv4 ("127.1.0.5") to an unsigned 32-bit integer; null if it is not one. */
export function ipv4ToInt(ip: string): number | null {
  const parts = ip.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n;
}

export function intToIpv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/**
 * The IPv4 address inside a socket address string: plain dotted quad, or IPv4-mapped IPv6
 * ("::ffff:127.0.0.1", which is what a dual-stack listener reports). Null for anything else.
 */
export function socketIpv4(address: string | undefined): string | null {
  if (address === undefined) return null;
  const a = address.startsWith('::ffff:') || address.startsWith('::FFFF:') ? address.slice(7) : address;
  return ipv4ToInt(a) === null ? null : a;
}

/** True only for an address in 127.0.0.0/8 (plain or IPv4-mapped). `::1` is loopback too, but the lab serves IPv4 only. */
export function isLoopbackIpv4(address: string | undefined): boolean {
  const ip = socketIpv4(address);
  if (ip === null) return false;
  const n = ipv4ToInt(ip);
  return n !== null && n >= LOOPBACK_FIRST && n <= LOOPBACK_LAST;
}

/**
 * The lab's admission rule for one accepted connection: both ends must be on loopback. Anything else is
 * destroyed before a byte is read or written (the lab must never serve off-loopback, whatever the bind).
 */
export function admitConnection(localAddress: string | undefined, remoteAddress: string | undefined): boolean {
  return isLoopbackIpv4(localAddress) && isLoopbackIpv4(remoteAddress);
}

/**
 * Index of `address` in an estate of `count` hosts starting at integer `baseInt`, or -1 when it lies
 * outside (such connections behave like a closed port).
 */
export function hostIndex(address: string | undefined, baseInt: number, count: number): number {
  const ip = socketIpv4(address);
  if (ip === null) return -1;
  const n = ipv4ToInt(ip);
  if (n === null) return -1;
  const i = n - baseInt;
  return i >= 0 && i < count ? i : -1;
}
