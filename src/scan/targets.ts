/**
 * Target specifications: what `tocsin scan TARGET...` accepts, validated before anything is sent, and
 * their deterministic, lazy expansion into (ip, hostname) pairs.
 *
 * Accepted forms (one per argument, or one per line in `@file` / `-` for stdin; `#` comments and blank
 * lines are fine in files):
 *   192.0.2.10                 IPv4 address (strict dotted quad: no leading zeros, no shorthand)
 *   2001:db8::10  [2001:db8::10]   IPv6 address
 *   192.0.2.0/24  2001:db8::/120   CIDR (host bits are masked; IPv6 prefixes shorter than /112 refused)
 *   192.0.2.10-192.0.2.50      inclusive address range (same family)
 *   mail.example.org           host name (RFC 1123); resolved by the CLI before the scan (resolveTargets)
 *   mail.example.org=192.0.2.10   host name pinned to an address (no DNS; also what resolveTargets produces)
 *
 * Pipeline: readTargetSpecs/loadTargets (validate; throws TOCSIN_TARGET_INVALID naming file and line)
 *   → resolveTargets (host names → name=ip, via an injectable resolver)
 *   → TargetSet.from (dedupe, exact count, lazy iterator; used identically in every worker thread).
 */
import { readFile } from 'node:fs/promises';
import { lookup } from 'node:dns/promises';
import type { Readable } from 'node:stream';
import { TocsinError } from '../core/errors.js';
import {
  V4_MAPPED_BASE, canonicalIp, formatIp, formatIPv4, formatIPv6, ipv4Problem, parseCidr, parseIp, v4Set, v6Set,
  type IpValue, type V4Set, type V6Set,
} from '../core/ip.js';
import type { AddressSet } from './scope.js';

/** Shortest IPv6 prefix we expand (/112 = 65,536 addresses); shorter ones are refused as absurd. */
export const MIN_V6_PREFIX = 112;
/** Default cap on the total number of addresses a target list may expand to (a /8). */
export const DEFAULT_MAX_ADDRESSES = 2 ** 24;
/** At most this many addresses are kept per resolved host name. */
export const MAX_ADDRESSES_PER_NAME = 16;

export type TargetKind = 'ipv4' | 'ipv6' | 'cidr4' | 'cidr6' | 'range4' | 'range6' | 'hostname' | 'pinned';

/** A validated target. `text` is canonical (lower case, RFC 5952 IPv6, masked CIDR) and round-trips. */
export interface TargetSpec {
  readonly text: string;
  readonly kind: TargetKind;
  /** Where it was given: "argument 2", "targets.txt:17", "stdin:3". */
  readonly where: string;
}

/** One address to scan and the name it was given as (sent as SNI and Host), if any. */
export interface ResolvedTarget {
  readonly ip: string;
  readonly hostname: string | null;
}

/** Quote hostile input for an error message: controls replaced, length capped. */
function quote(s: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[\u0000-\u001f\u007f]/g, '?');
  return `'${clean.length > 80 ? `${clean.slice(0, 79)}…` : clean}'`;
}

/** Why `s` is not an RFC 1123 host name, or null. */
export function hostnameProblem(s: string): string | null {
  const h = s.endsWith('.') ? s.slice(0, -1) : s;
  if (h === '') return 'is empty';
  if (h.length > 253) return 'is longer than 253 characters';
  const labels = h.split('.');
  for (const l of labels) {
    if (l === '') return 'has an empty label (..)';
    if (l.length > 63) return `has a label longer than 63 characters`;
    if (!/^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/.test(l)) {
      return `has an invalid label ${quote(l)} (letters, digits and inner hyphens only)`;
    }
  }
  if (/^\d+$/.test(labels[labels.length - 1] as string)) return 'ends in a numeric label (not a name, not an address)';
  return null;
}

/**
 * Strict parse in the canonical family: an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 host the
 * kernel connects to, so it is scanned, excluded, deduplicated and rate-limited as that IPv4 address.
 */
function parseHost(s: string): IpValue | null {
  const ip = parseIp(s);
  return ip === null ? null : canonicalIp(ip);
}

/** Canonical text of an address (IPv4-mapped written as IPv4), or null. */
function normalizeHost(s: string): string | null {
  const ip = parseHost(s);
  return ip === null ? null : formatIp(ip);
}

type Parsed = { kind: TargetKind; text: string } | { problem: string };

/** Classifies and validates one token (already trimmed, non-empty). */
function parseToken(t: string): Parsed {
  const q = quote(t);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(t)) return { problem: `${q} is a URL; give the host name or address only (ports go in --ports)` };
  if (/\s/.test(t)) return { problem: `${q} contains white space (one target per line)` };
  const eq = t.indexOf('=');
  if (eq >= 0) {
    const name = t.slice(0, eq);
    const addr = t.slice(eq + 1);
    const hp = hostnameProblem(name);
    if (hp !== null || parseIp(name) !== null) return { problem: `${q}: ${quote(name)} is not a host name${hp !== null ? ` (${hp})` : ''}` };
    const ip = normalizeHost(addr);
    if (ip === null) return { problem: `${q}: ${quote(addr)} is not an IPv4 or IPv6 address` };
    return { kind: 'pinned', text: `${name.toLowerCase().replace(/\.$/, '')}=${ip}` };
  }
  if (t.includes('/')) {
    const parsed = parseCidr(t);
    if (typeof parsed === 'string') return { problem: `${q} is not a CIDR: ${parsed}` };
    let c = parsed;
    const given = parseIp(t.slice(0, t.indexOf('/')));
    if (given !== null && given.value !== c.first) {
      // nmap widens 127.1.0.1/8 to 127.0.0.0/8 without a word: 16.7M addresses where one was probably meant.
      // For a CERT that is a legal risk, so the user must say which one they mean.
      const net = `${c.family === 4 ? formatIPv4(c.first) : formatIPv6(c.first)}/${c.prefix}`;
      const size = c.family === 4 ? (c.last - c.first + 1).toLocaleString('en-US') : `2^${128 - c.prefix}`;
      return {
        problem: `${q} has host bits set: it lies in the network ${net} (${size} addresses); give ${net} to scan that network, or ${formatIp(given)} for the one address`,
      };
    }
    if (c.family === 6 && c.first >> 32n === 0xffffn && c.prefix >= 96) {
      // ::ffff:a.b.c.d/N is the IPv4 network a.b.c.d/(N-96): the same hosts, written the IPv4 way.
      const first = Number(c.first - V4_MAPPED_BASE);
      c = { family: 4, prefix: c.prefix - 96, first, last: Number(c.last - V4_MAPPED_BASE) };
    }
    if (c.family === 6 && c.prefix < MIN_V6_PREFIX) {
      return { problem: `${q}: IPv6 prefix /${c.prefix} is too large to scan (2^${128 - c.prefix} addresses); use /${MIN_V6_PREFIX} or longer` };
    }
    const base = c.family === 4 ? formatIPv4(c.first) : formatIPv6(c.first);
    return { kind: c.family === 4 ? 'cidr4' : 'cidr6', text: `${base}/${c.prefix}` };
  }
  const dash = t.indexOf('-');
  if (dash > 0 && (parseIp(t.slice(0, dash)) !== null || /^[\d.]+$/.test(t.slice(0, dash)))) {
    const a = parseHost(t.slice(0, dash));
    const b = parseHost(t.slice(dash + 1));
    if (a === null || b === null) return { problem: `${q} is not an address range (expected FIRST-LAST, two addresses of one family)` };
    if (a.family !== b.family) return { problem: `${q} mixes IPv4 and IPv6` };
    if (a.value > b.value) return { problem: `${q}: the first address is after the last` };
    if (a.family === 6 && (b.value as bigint) - (a.value as bigint) >= 2n ** BigInt(128 - MIN_V6_PREFIX)) {
      return { problem: `${q}: IPv6 range larger than a /${MIN_V6_PREFIX}` };
    }
    const fa = a.family === 4 ? formatIPv4(a.value) : formatIPv6(a.value);
    const fb = b.family === 4 ? formatIPv4(b.value) : formatIPv6(b.value);
    return { kind: a.family === 4 ? 'range4' : 'range6', text: `${fa}-${fb}` };
  }
  if (t.includes(':')) {
    if (/^[^:[\]]+:\d+$/.test(t)) return { problem: `${q} looks like address:port; give ports with --ports` };
    const raw = parseIp(t);
    if (raw === null || raw.family !== 6) return { problem: `${q} is not an IPv6 address` };
    const ip = canonicalIp(raw);
    return ip.family === 4 ? { kind: 'ipv4', text: formatIPv4(ip.value) } : { kind: 'ipv6', text: formatIPv6(ip.value) };
  }
  if (/^[\d.]+$/.test(t)) {
    const p = ipv4Problem(t);
    if (p !== null) return { problem: `${q} is not an IPv4 address (${p})` };
    return { kind: 'ipv4', text: normalizeHost(t) ?? t };
  }
  const hp = hostnameProblem(t);
  if (hp !== null) return { problem: `${q} is not an address, CIDR or host name (the name ${hp})` };
  return { kind: 'hostname', text: t.toLowerCase().replace(/\.$/, '') };
}

/** Validates one target; throws TOCSIN_TARGET_INVALID ("targets.txt:17: '10.0.0.300' is not an IPv4 address ..."). */
export function parseTargetSpec(text: string, where: string): TargetSpec {
  const p = parseToken(text.trim());
  if ('problem' in p) throw new TocsinError('TOCSIN_TARGET_INVALID', `${where}: ${p.problem}`);
  return { text: p.text, kind: p.kind, where };
}

function throwProblems(problems: readonly string[]): never {
  const shown = problems.length > 20 ? [...problems.slice(0, 20), `... and ${problems.length - 20} more`] : problems;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem(s))` : '';
  // One problem is said once, in the message; several are listed as details too.
  throw new TocsinError('TOCSIN_TARGET_INVALID', `${problems[0] ?? 'invalid target'}${more}`, { details: problems.length > 1 ? shown : [] });
}

/** Splits a target file into (token, line number) pairs; `#` comments, blank lines and CRLF are fine. */
function* fileTokens(text: string): Generator<[string, number]> {
  let start = text.charCodeAt(0) === 0xfeff ? 1 : 0; // BOM
  let line = 1;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    let s = text.slice(start, end);
    const hash = s.indexOf('#');
    if (hash >= 0) s = s.slice(0, hash);
    s = s.trim();
    if (s !== '') yield [s, line];
    line++;
    start = end + 1;
  }
}

async function readStream(s: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  return Buffer.concat(chunks).toString('utf8');
}

export interface ReadTargetsOptions {
  /** Where `-` reads from (default process.stdin). */
  readonly stdin?: Readable;
  /** Cap on the total expansion (default DEFAULT_MAX_ADDRESSES). */
  readonly maxAddresses?: number;
}

/**
 * Expands `@file` and `-`, validates every target and the total size. All problems are collected;
 * throws TOCSIN_TARGET_INVALID naming the first (with file and line) and listing all in `details`,
 * or TOCSIN_INPUT_UNREADABLE for a file that cannot be read. Nothing is resolved or sent here.
 */
export async function readTargetSpecs(args: readonly string[], opts: ReadTargetsOptions = {}): Promise<TargetSpec[]> {
  const out: TargetSpec[] = [];
  const problems: string[] = [];
  const add = (token: string, where: string, fromFile: boolean): void => {
    if (fromFile && (token.startsWith('@') || token === '-')) {
      problems.push(`${where}: ${quote(token)}: a target file cannot include other files or stdin`);
      return;
    }
    const p = parseToken(token);
    if ('problem' in p) problems.push(`${where}: ${p.problem}`);
    else out.push({ text: p.text, kind: p.kind, where });
  };
  let stdinUsed = false;
  for (const [i, raw] of args.entries()) {
    const a = raw.trim();
    if (a === '-' || a === '@-') {
      if (stdinUsed) continue;
      stdinUsed = true;
      const text = await readStream(opts.stdin ?? process.stdin);
      for (const [tok, line] of fileTokens(text)) add(tok, `stdin:${line}`, true);
    } else if (a.startsWith('@')) {
      const path = a.slice(1);
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (e) {
        throw new TocsinError('TOCSIN_INPUT_UNREADABLE', `cannot read target file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
      }
      for (const [tok, line] of fileTokens(text)) add(tok, `${path}:${line}`, true);
    } else if (a === '') {
      problems.push(`argument ${i + 1}: empty target`);
    } else add(a, `argument ${i + 1}`, false);
  }
  if (problems.length > 0) throwProblems(problems);
  if (out.length === 0) throw new TocsinError('TOCSIN_TARGET_INVALID', 'no targets given (the inputs held only comments or blank lines)');
  // refuse absurd totals before anything is resolved or sent
  TargetSet.from(out.map((s) => s.text), { maxAddresses: opts.maxAddresses ?? DEFAULT_MAX_ADDRESSES });
  return out;
}

/** Same as readTargetSpecs, returning canonical texts (what a stored scan plan keeps). */
export async function loadTargets(args: readonly string[], stdin?: Readable, maxAddresses?: number): Promise<readonly string[]> {
  const specs = await readTargetSpecs(args, {
    ...(stdin === undefined ? {} : { stdin }),
    ...(maxAddresses === undefined ? {} : { maxAddresses }),
  });
  return specs.map((s) => s.text);
}

// ---------------------------------------------------------------------------------------------------
// Resolution

/** Host name → addresses. Injectable so tests never touch real DNS. */
export type Resolver = (hostname: string) => Promise<readonly string[]>;

/**
 * The system resolver (getaddrinfo: /etc/hosts, then DNS) with a deadline. getaddrinfo cannot be
 * cancelled; after the deadline we stop waiting and report a timeout.
 */
export function dnsResolver(opts: { timeoutMs?: number } = {}): Resolver {
  const timeoutMs = opts.timeoutMs ?? 3000;
  return async (hostname) => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`DNS timeout after ${timeoutMs} ms`), { code: 'ETIMEOUT' })), timeoutMs);
    });
    try {
      const res = await Promise.race([lookup(hostname, { all: true, verbatim: true }), deadline]);
      return res.map((r) => r.address);
    } finally {
      clearTimeout(timer);
    }
  };
}

export interface Unresolved {
  readonly hostname: string;
  readonly reason: string;
}

/**
 * Replaces every bare host name by `name=ip` entries (one per address, at most MAX_ADDRESSES_PER_NAME,
 * in the resolver's order), keeping the list order. Names that do not resolve are dropped and listed
 * in `unresolved` (the CLI warns; nothing is sent to them). Never throws for DNS failures.
 */
export async function resolveTargets(
  targets: readonly string[],
  resolve: Resolver,
  opts: { concurrency?: number } = {},
): Promise<{ targets: string[]; unresolved: Unresolved[] }> {
  const names = [...new Set(targets.filter((t) => parseTargetKind(t) === 'hostname'))];
  const answers = new Map<string, string[] | string>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const name = names[next++] as string;
      try {
        const addrs: string[] = [];
        for (const a of await resolve(name)) {
          const n = normalizeHost(a);
          if (n !== null && !addrs.includes(n)) addrs.push(n);
          if (addrs.length >= MAX_ADDRESSES_PER_NAME) break;
        }
        answers.set(name, addrs.length > 0 ? addrs : 'no addresses');
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        answers.set(name, typeof code === 'string' ? code : String(e).slice(0, 200));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 8, names.length)) }, worker));
  const out: string[] = [];
  const unresolved: Unresolved[] = [];
  for (const t of targets) {
    const a = answers.get(t);
    if (a === undefined) out.push(t);
    else if (typeof a === 'string') {
      if (!unresolved.some((u) => u.hostname === t)) unresolved.push({ hostname: t, reason: a });
    } else for (const ip of a) out.push(`${t}=${ip}`);
  }
  return { targets: out, unresolved };
}

function parseTargetKind(t: string): TargetKind | null {
  const p = parseToken(t.trim());
  return 'problem' in p ? null : p.kind;
}

// ---------------------------------------------------------------------------------------------------
// Expansion

export interface TargetSetOptions {
  /** Addresses to leave out (counted in excludedCount). Default: none (the engine checks exclusions itself). */
  readonly exclude?: AddressSet;
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
 * Memory is proportional to the number of given entries, never to the number of addresses.
 */
export class TargetSet implements Iterable<ResolvedTarget> {
  /** Exact number of (ip, hostname) pairs the iterator yields. */
  readonly size: number;
  /** Addresses left out because they are in `exclude`. */
  readonly excludedCount: number;
  /** Bare host names in the input (not resolved yet: they are not yielded). */
  readonly unresolvedHostnames: readonly string[];

  private constructor(
    private readonly pinned: readonly ResolvedTarget[],
    private readonly v4: V4Set,
    private readonly v6: V6Set,
    private readonly order: 'spread' | 'sequential',
    excludedCount: number,
    unresolvedHostnames: readonly string[],
  ) {
    this.size = pinned.length + Number(v4.size) + Number(v6.size);
    this.excludedCount = excludedCount;
    this.unresolvedHostnames = unresolvedHostnames;
  }

  /** From canonical or raw target texts (invalid ones throw TOCSIN_TARGET_INVALID, naming the list position). */
  static from(targets: readonly string[], opts: TargetSetOptions = {}): TargetSet {
    const r4: Array<[number, number]> = [];
    const r6: Array<[bigint, bigint]> = [];
    const pinned: ResolvedTarget[] = [];
    const pinnedIps = new Set<string>();
    const names: string[] = [];
    for (const [i, raw] of targets.entries()) {
      const p = parseToken(raw.trim());
      if ('problem' in p) throw new TocsinError('TOCSIN_TARGET_INVALID', `target ${i + 1}: ${p.problem}`);
      const t = p.text;
      switch (p.kind) {
        case 'ipv4': {
          const v = parseIp(t);
          if (v?.family === 4) r4.push([v.value, v.value]);
          break;
        }
        case 'ipv6': {
          const v = parseIp(t);
          if (v?.family === 6) r6.push([v.value, v.value]);
          break;
        }
        case 'cidr4':
        case 'cidr6': {
          const c = parseCidr(t);
          if (typeof c !== 'string') {
            if (c.family === 4) r4.push([c.first, c.last]);
            else r6.push([c.first, c.last]);
          }
          break;
        }
        case 'range4':
        case 'range6': {
          const dash = t.indexOf('-');
          const a = parseIp(t.slice(0, dash));
          const b = parseIp(t.slice(dash + 1));
          if (a?.family === 4 && b?.family === 4) r4.push([a.value, b.value]);
          else if (a?.family === 6 && b?.family === 6) r6.push([a.value, b.value]);
          break;
        }
        case 'pinned': {
          const eq = t.indexOf('=');
          const ip = t.slice(eq + 1);
          if (!pinnedIps.has(ip)) {
            pinnedIps.add(ip);
            pinned.push({ ip, hostname: t.slice(0, eq) });
          }
          break;
        }
        case 'hostname':
          if (!names.includes(t)) names.push(t);
          break;
      }
    }
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
    const p4: Array<[number, number]> = [];
    const p6: Array<[bigint, bigint]> = [];
    for (const ip of pinnedIps) {
      const v = parseIp(ip);
      if (v?.family === 4) p4.push([v.value, v.value]);
      else if (v?.family === 6) p6.push([v.value, v.value]);
    }
    if (p4.length > 0) s4 = s4.minus(v4Set(p4));
    if (p6.length > 0) s6 = s6.minus(v6Set(p6));
    let excluded = 0;
    let kept = pinned;
    if (opts.exclude !== undefined && !opts.exclude.isEmpty) {
      const ex = opts.exclude;
      kept = pinned.filter((t) => !ex.has(t.ip));
      excluded += pinned.length - kept.length;
      excluded += Number(s4.intersect(ex.v4).size + s6.intersect(ex.v6).size);
      s4 = s4.minus(ex.v4);
      s6 = s6.minus(ex.v6);
    }
    return new TargetSet(kept, s4, s6, opts.order ?? 'spread', excluded, names);
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
