/**
 * Host names to addresses, once, before the scan: a stored plan holds name=ip pairs, so worker threads and
 * resumes never resolve again. The resolver is injected, so tests never touch real DNS.
 */
import { lookup } from 'node:dns/promises';
import { errno } from '../core/errors.js';
import { normalizeHost, parseTarget } from './targets-grammar.js';

/** At most this many addresses are kept per resolved host name. */
export const MAX_ADDRESSES_PER_NAME = 16;

/** Host name → addresses. */
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

function isHostname(t: string): boolean {
  const p = parseTarget(t.trim());
  return !('problem' in p) && p.kind === 'hostname';
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
  const names = [...new Set(targets.filter(isHostname))];
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
        answers.set(name, errno(e) ?? String(e).slice(0, 200));
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
