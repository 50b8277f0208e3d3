/**
 * Discovery as the first stage (issue 11 §3): a port scanner's output (masscan, zmap, nmap; parsed by src/ingest)
 * says which ports are open, and only those are fingerprinted. A scan plan is targets × ports, so the open
 * (ip, port) pairs are grouped by each address's set of open ports: one plan per distinct set, none of them
 * contacting a port the discovery did not see open.
 */
import { normalizeIp } from '../core/ip.js';

export interface OpenPort {
  readonly ip: string;
  readonly port: number;
}

export interface DiscoveryGroup {
  /** Addresses (canonical text, sorted) whose open ports are exactly `ports`. */
  readonly ips: readonly string[];
  /** Ports ascending. */
  readonly ports: readonly number[];
}

export function groupDiscovered(open: Iterable<OpenPort>): DiscoveryGroup[] {
  const byIp = new Map<string, Set<number>>();
  for (const o of open) {
    const ip = normalizeIp(o.ip);
    if (ip === null || !Number.isInteger(o.port) || o.port < 1 || o.port > 65_535) continue;
    let s = byIp.get(ip);
    if (s === undefined) byIp.set(ip, (s = new Set()));
    s.add(o.port);
  }
  const groups = new Map<string, { ips: string[]; ports: number[] }>();
  for (const [ip, set] of byIp) {
    const ports = [...set].sort((a, b) => a - b);
    const key = ports.join(',');
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { ips: [], ports }));
    g.ips.push(ip);
  }
  return [...groups.values()]
    .map((g) => ({ ips: g.ips.sort(), ports: g.ports }))
    .sort((a, b) => b.ips.length - a.ips.length || a.ports.join(',').localeCompare(b.ports.join(',')));
}
