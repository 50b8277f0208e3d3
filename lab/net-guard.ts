/**
 * The lab's loopback rule. The lab listens on 0.0.0.0 so that every 127.x.y.z answers; these checks are
 * what keeps it from ever serving anything off-loopback. Address parsing is src/core/ip's (strict dotted
 * quads), the one parser the scanner uses too.
 */
import { parseIPv4 } from '../src/core/ip.js';

/** 127.0.0.0/8 as integers. */
const LOOPBACK_FIRST = 0x7f000000;
const LOOPBACK_LAST = 0x7fffffff;

/**
 * The IPv4 address inside a socket address string, as a number: plain dotted quad, or IPv4-mapped IPv6
 * ("::ffff:127.0.0.1", which is what a dual-stack listener reports). Null for anything else.
 */
export function socketIpv4(address: string | undefined): number | null {
  if (address === undefined) return null;
  const a = address.startsWith('::ffff:') || address.startsWith('::FFFF:') ? address.slice(7) : address;
  return parseIPv4(a);
}

/** True only for an address in 127.0.0.0/8 (plain or IPv4-mapped). `::1` is loopback too, but the lab serves IPv4 only. */
export function isLoopbackIpv4(address: string | undefined): boolean {
  const n = socketIpv4(address);
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
  const n = socketIpv4(address);
  if (n === null) return -1;
  const i = n - baseInt;
  return i >= 0 && i < count ? i : -1;
}
