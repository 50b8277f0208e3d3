/**
 * Exclusion lists: addresses and CIDRs (IPv4 and IPv6) that are never contacted. They come from the
 * files in config.excludeFiles (TOCSIN_EXCLUDE_FILES) and from `--exclude` on the command line.
 *
 * Membership is a binary search over sorted, merged ranges (src/core/ip.ts), so a list of a million
 * entries costs O(log n) per check and memory proportional to the number of ranges, not addresses.
 * The engine checks every target address before taking a rate-limit token or opening a socket.
 *
 * File format: one address or CIDR per line; `#` starts a comment; blank lines are ignored. Any other
 * line is refused with its file and line number before anything is sent.
 */
import { readFile } from 'node:fs/promises';
import { TocsinError } from '../core/errors.js';
import {
  addressReadings, closeUnderV4Embedding, formatIPv4, formatIPv6, ipv4Problem, parseCidr, parseIp, v4Set, v6Set,
  type V4Set, type V6Set,
} from '../core/ip.js';

/** One validated exclusion entry with where it came from (for messages). */
export interface ExclusionEntry {
  /** Canonical text: "192.0.2.0/24", "2001:db8::/48", "198.51.100.7". */
  readonly text: string;
  /** e.g. "excludes.txt:3" or "--exclude 2". */
  readonly where: string;
}

/**
 * Every canonical entry (address or CIDR) a line may mean, or why it means none. Lists come from other tools:
 * zero-padded IPv4 ("010.001.002.003") is read both ways it can be (decimal and inet_aton's octal), IPv6 in any
 * spelling (upper case, zero groups, embedded dotted quad, brackets) is accepted; CIDR host bits are masked off
 * (for an exclusion, widening is the safe side). IPv4-in-IPv6 forms are matched by AddressSet, not here.
 */
export function exclusionReadings(text: string): string[] | string {
  if (text.includes('/')) {
    const slash = text.indexOf('/');
    const addrs = addressReadings(text.slice(0, slash));
    const prefix = text.slice(slash + 1);
    if (addrs.length === 0) {
      const c = parseCidr(text);
      return `'${text}' is not a CIDR: ${typeof c === 'string' ? c : 'invalid'}`;
    }
    const out: string[] = [];
    for (const a of addrs) {
      const c = parseCidr(`${a}/${prefix}`);
      if (typeof c === 'string') return `'${text}' is not a CIDR: ${c}`;
      const entry = `${c.family === 4 ? formatIPv4(c.first) : formatIPv6(c.first)}/${c.prefix}`;
      if (!out.includes(entry)) out.push(entry);
    }
    return out;
  }
  const addrs = addressReadings(text);
  if (addrs.length > 0) return addrs;
  if (/^[\d.]+$/.test(text)) return `'${text}' is not an IPv4 address: ${ipv4Problem(text) ?? 'invalid'}`;
  if (text.includes(':')) return `'${text}' is not an IPv6 address`;
  return `'${text}' is not an address or CIDR (exclusion lists take IPv4/IPv6 addresses and CIDRs, not names)`;
}

/** Why a line is not an exclusion entry, or null when it is one. */
export function exclusionProblem(text: string): string | null {
  const r = exclusionReadings(text);
  return typeof r === 'string' ? r : null;
}

/**
 * True for a value that is meant as an address or CIDR rather than a file name: digits and dots, or letters, digits
 * and at least two colons (with an optional /prefix). `--exclude 300.0.0.0/8` is then reported as a bad address, not as a
 * missing file; a file with such a name can still be given as `@300.0.0.0`.
 */
export function looksLikeAddress(text: string): boolean {
  const t = text.trim();
  // IPv6 attempts: at least two colons (a Windows path has one), letters allowed so that typos are caught too
  return /^[\d.]+(\/\d*)?$/.test(t) || /^\[?[\w.]*:[\w.]*:[\w:.]*\]?(\/\d*)?$/.test(t);
}

/**
 * Parses exclusion list text. Every bad line is collected; if any, throws TOCSIN_TARGET_INVALID naming
 * the first (and listing all in `details`).
 */
export function parseExclusionText(text: string, source: string): ExclusionEntry[] {
  const out: ExclusionEntry[] = [];
  const problems: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] as string;
    const hash = raw.indexOf('#');
    const t = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (t === '') continue;
    const where = `${source}:${i + 1}`;
    const r = exclusionReadings(t);
    if (typeof r === 'string') problems.push(`${where}: ${r}`);
    else for (const e of r) out.push({ text: e, where });
  }
  if (problems.length > 0) throwInvalid(problems);
  return out;
}

function throwInvalid(problems: readonly string[]): never {
  const shown = problems.length > 20 ? [...problems.slice(0, 20), `... and ${problems.length - 20} more`] : problems;
  throw new TocsinError('TOCSIN_TARGET_INVALID', `exclusion list: ${problems[0] ?? ''}`, { details: shown });
}

/**
 * Reads the exclusion files and `--exclude` values (each may be an address, a CIDR, or `@file`).
 * Returns validated canonical entries (plain strings, so they can go into a stored scan plan).
 * Throws TOCSIN_INPUT_UNREADABLE for a missing file, TOCSIN_TARGET_INVALID for a bad line.
 */
export async function loadExclusions(files: readonly string[], extra: readonly string[] = []): Promise<readonly string[]> {
  const out: string[] = [];
  const problems: string[] = [];
  const readList = async (path: string): Promise<void> => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw new TocsinError('TOCSIN_INPUT_UNREADABLE', `cannot read exclusion list ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
    }
    try {
      for (const e of parseExclusionText(text, path)) out.push(e.text);
    } catch (e) {
      if (e instanceof TocsinError) problems.push(...e.details);
      else throw e;
    }
  };
  for (const f of files) await readList(f);
  for (const [i, x] of extra.entries()) {
    const t = x.trim();
    if (t.startsWith('@')) {
      await readList(t.slice(1));
      continue;
    }
    const r = exclusionReadings(t);
    if (typeof r === 'string') problems.push(`--exclude ${i + 1}: ${r}`);
    else out.push(...r);
  }
  if (problems.length > 0) throwInvalid(problems);
  return out;
}

/**
 * The address ranges of canonical texts: addresses, CIDRs and FIRST-LAST ranges, per family. Strings that are
 * none of these are skipped (validate first). The one place where target and exclusion texts become ranges.
 */
export function addressRanges(texts: Iterable<string>): { r4: Array<[number, number]>; r6: Array<[bigint, bigint]> } {
  const r4: Array<[number, number]> = [];
  const r6: Array<[bigint, bigint]> = [];
  for (const t of texts) {
    if (t.includes('/')) {
      const c = parseCidr(t);
      if (typeof c === 'string') continue;
      if (c.family === 4) r4.push([c.first, c.last]);
      else r6.push([c.first, c.last]);
      continue;
    }
    const dash = t.indexOf('-');
    const a = parseIp(dash > 0 ? t.slice(0, dash) : t);
    const b = dash > 0 ? parseIp(t.slice(dash + 1)) : a;
    if (a?.family === 4 && b?.family === 4) r4.push([a.value, b.value]);
    else if (a?.family === 6 && b?.family === 6) r6.push([a.value, b.value]);
  }
  return { r4, r6 };
}

/** A set of addresses that must never be contacted. */
export class AddressSet {
  private constructor(
    readonly v4: V4Set,
    readonly v6: V6Set,
  ) {}

  /**
   * From validated entries (addresses or CIDRs); invalid strings are ignored (validate first). Every IPv4 range is
   * also held in its IPv6 spellings (V4_EMBEDDING_BASES) and every IPv6 range that embeds IPv4 also as IPv4.
   */
  static from(entries: readonly string[]): AddressSet {
    const { r4, r6 } = addressRanges(entries);
    // ::ffff:a.b.c.d reaches a.b.c.d: each family's set also holds the other's aliases, so `has` needs no
    // further normalisation of the address it is asked about.
    const closed = closeUnderV4Embedding(r4, r6);
    return new AddressSet(v4Set(closed.r4), v6Set(closed.r6));
  }

  static empty(): AddressSet {
    return AddressSet.from([]);
  }

  /** True if `ip` (IPv4, IPv6, or [IPv6]) is in the set. A string that is not an address is not in it. */
  has(ip: string): boolean {
    const v = parseIp(ip);
    if (v === null) return false;
    if (v.family === 4) return this.v4.size > 0n && this.v4.has(v.value);
    return this.v6.size > 0n && this.v6.has(v.value);
  }

  get isEmpty(): boolean {
    return this.v4.size === 0n && this.v6.size === 0n;
  }
}

/** The engine's `isExcluded(ip)` for a list of validated entries. */
export function exclusionMatcher(entries: readonly string[]): (ip: string) => boolean {
  const set = AddressSet.from(entries);
  if (set.isEmpty) return () => false;
  return (ip) => set.has(ip);
}
