/**
 * Property test of the attribution index: on seeded random registries (2,000 nested networks: CIDRs inside CIDRs,
 * unaligned RPSL ranges that overlap partially, duplicates held by several organisations in both layers, IPv4 and
 * IPv6), the index's answer for 10,000 random addresses equals a naive linear scan over every network: the same
 * winner and the same losing networks in the same order. And the fast engine (`attribute`) equals the reference
 * engine (`attributeReference`, score every candidate and sort) answer for answer on random registries (overrides,
 * nested networks, ASNs, a prefix table, nested domains in both layers) and random facts (every hostname source,
 * hostile spellings, wildcards, certificates with dozens of SANs, IPv4-mapped and invalid addresses).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prng } from '../lab/prng.js';
import { formatIp } from '../src/core/ip.js';
import { attribute, attributeReference, buildAttributionIndex, parseRange, type RegistryNetwork, type ParsedRange } from '../src/attribution/index.js';

type Net = RegistryNetwork & { readonly range: ParsedRange };

function randomRegistry(seed: number, count: number): Net[] {
  const rnd = prng(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const nets: Net[] = [];
  const add = (text: string, orgId: number): void => {
    const range = parseRange(text);
    if (typeof range === 'string') throw new Error(`${text}: ${range}`);
    nets.push({ orgId, network: text, layer: rnd() < 0.2 ? 'manual' : 'imported', range });
  };
  // Roots: a handful of /8s (IPv4) and /24s... (IPv6) so that children nest deeply.
  for (let i = 0; i < 8; i++) add(`${10 + i}.0.0.0/8`, 1 + int(50));
  for (let i = 0; i < 4; i++) add(`2001:db8:${i.toString(16)}00::/40`, 1 + int(50));
  while (nets.length < count) {
    const parent = nets[int(nets.length)]!.range;
    const kind = rnd();
    if (kind < 0.1) {
      // A duplicate of an existing range for another (or the same) organisation.
      add(parent.text, 1 + int(50));
    } else if (parent.family === 4) {
      const size = parent.last - parent.first + 1;
      if (size < 2) continue;
      if (kind < 0.3) {
        // An unaligned range inside the parent, possibly overlapping its siblings partially.
        const a = parent.first + int(size);
        const b = Math.min(parent.last, a + int(Math.max(1, size / 4)));
        add(`${formatIp({ family: 4, value: a })} - ${formatIp({ family: 4, value: b })}`, 1 + int(50));
      } else {
        const parentBits = 32 - Math.log2(size);
        const prefix = Number.isInteger(parentBits) ? Math.min(32, parentBits + 1 + int(8)) : 24 + int(9);
        const block = 2 ** (32 - prefix);
        const first = Math.floor((parent.first + int(size)) / block) * block;
        add(`${formatIp({ family: 4, value: first })}/${prefix}`, 1 + int(50));
      }
    } else {
      const size = parent.last - parent.first + 1n;
      const bits = size.toString(2).length - 1;
      const prefix = Math.min(128, 128 - bits + 1 + int(24));
      const offset = BigInt(Math.floor(rnd() * 2 ** 30)) * (size >> 30n > 0n ? size >> 30n : 1n);
      const host = parent.first + (offset % size);
      add(`${formatIp({ family: 6, value: host })}/${prefix}`, 1 + int(50));
    }
  }
  return nets;
}

/** The naive answer: every network containing the address, ordered as the engine promises. */
function naive(nets: readonly Net[], ip: { family: 4; value: number } | { family: 6; value: bigint }): Net[] {
  const hits: { n: Net; i: number }[] = [];
  nets.forEach((n, i) => {
    if (n.range.family === 4 && ip.family === 4 && n.range.first <= ip.value && ip.value <= n.range.last) hits.push({ n, i });
    if (n.range.family === 6 && ip.family === 6 && n.range.first <= ip.value && ip.value <= n.range.last) hits.push({ n, i });
  });
  const size = (r: ParsedRange): bigint => (r.family === 4 ? BigInt(r.last - r.first) : r.last - r.first);
  const layer = (n: Net): number => (n.layer === 'manual' ? 0 : 1);
  hits.sort((x, y) => {
    const sx = size(x.n.range);
    const sy = size(y.n.range);
    return (sx < sy ? -1 : sx > sy ? 1 : 0) || layer(x.n) - layer(y.n) || x.n.orgId - y.n.orgId || x.i - y.i;
  });
  return hits.map((h) => h.n);
}

test('the index agrees with a linear scan: 10,000 addresses against 2,000 random nested networks', () => {
  for (const seed of [1, 2026]) {
    const nets = randomRegistry(seed, 2000);
    const orgs = Array.from({ length: 50 }, (_, i) => ({ id: i + 1, name: `org ${i + 1}` }));
    const index = buildAttributionIndex({ organisations: orgs, networks: nets, asns: [], domains: [], overrides: [] });
    assert.deepEqual(index.problems, []);
    const rnd = prng(seed * 7919);
    let attributed = 0;
    let nested = 0;
    for (let k = 0; k < 10_000; k++) {
      // Mostly addresses inside some network (near its edges a third of the time), some anywhere.
      let ip: { family: 4; value: number } | { family: 6; value: bigint };
      const net = nets[Math.floor(rnd() * nets.length)]!.range;
      const r = rnd();
      if (r < 0.1) ip = { family: 4, value: Math.floor(rnd() * 2 ** 32) };
      else if (net.family === 4) {
        const edge = rnd() < 0.33;
        const v = edge ? (rnd() < 0.5 ? net.first - 1 + Math.floor(rnd() * 3) : net.last - 1 + Math.floor(rnd() * 3)) : net.first + Math.floor(rnd() * (net.last - net.first + 1));
        ip = { family: 4, value: Math.max(0, Math.min(2 ** 32 - 1, v)) };
      } else {
        const span = net.last - net.first + 1n;
        const edge = rnd() < 0.33;
        const v = edge ? (rnd() < 0.5 ? net.first - 1n : net.last + BigInt(Math.floor(rnd() * 2))) : net.first + (BigInt(Math.floor(rnd() * 2 ** 52)) * 4093n) % span;
        ip = { family: 6, value: v };
      }
      const want = naive(nets, ip);
      const got = attribute(index, { ip: formatIp(ip) });
      const wantTexts = want.map((n) => `${n.orgId}@${n.range.text}`);
      const gotTexts = got.orgId === null ? [] : [
        `${got.orgId}@${(got.evidence as { network: string }).network}`,
        ...got.candidates.map((c) => `${c.orgId}@${(c.evidence as { network: string }).network}`),
      ];
      assert.deepEqual(gotTexts, wantTexts.slice(0, 33), `seed ${seed}, address ${formatIp(ip)}`);
      // The index itself, below the engine's ranking: every containing network, most specific first.
      const table = ip.family === 4 ? index.networks.v4 : index.networks.v6;
      const hits = ip.family === 4 ? index.networks.v4.index.lookup(ip.value) : index.networks.v6.index.lookup(ip.value);
      assert.deepEqual(hits.map((h) => `${table.entries[h]!.entry.orgId}@${table.entries[h]!.range.text}`), wantTexts, `index, ${formatIp(ip)}`);
      if (want.length > 0) attributed++;
      if (want.length > 2) nested++;
    }
    // The generator must exercise what it claims: most addresses covered, many under several networks.
    assert.ok(attributed > 8000, `only ${attributed} of 10,000 addresses inside a network`);
    assert.ok(nested > 2000, `only ${nested} addresses under three or more networks`);
  }
});

test('the fast engine equals the reference engine on random registries and random facts (every rule, every source)', () => {
  const labels = ['a', 'b', 'mail', 'x-1', 'org', 'example', 'test', 'xn--bcher-kva'];
  const sources = ['csv', 'ripe', null];
  for (const seed of [3, 77]) {
    const rnd = prng(seed);
    const int = (n: number): number => Math.floor(rnd() * n);
    const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
    const layer = (): 'manual' | 'imported' | undefined => pick(['manual', 'imported', undefined] as const);
    const nets = randomRegistry(seed, 400);
    const orgs = Array.from({ length: 50 }, (_, i) => ({
      id: i + 1, name: `org ${i + 1}`,
      contacts: i % 4 === 0 ? [{ role: 'abuse' as const, email: `abuse@o${i}.test` }, { role: 'security' as const, email: `cert@o${i}.test` }] : [],
    }));
    const name = (n: number): string => Array.from({ length: n }, () => pick(labels)).join('.');
    const domains = Array.from({ length: 120 }, (_, i) => ({ id: i, orgId: 1 + int(50), domain: name(2 + int(3)), layer: layer(), source: pick(sources) }));
    const asns = Array.from({ length: 80 }, (_, i) => ({ id: `a${i}`, orgId: 1 + int(50), asn: 64500 + int(30), layer: layer() }));
    const overrides = Array.from({ length: 40 }, (_, i) => ({
      id: i, orgId: 1 + int(50),
      target: rnd() < 0.5 ? pick(nets).network : formatIp(pick(nets).range.family === 4 ? { family: 4, value: 167772160 + int(2 ** 27) } : { family: 6, value: (0x20010db8n << 96n) | BigInt(int(2 ** 30)) }),
      note: rnd() < 0.5 ? 'analyst' : null,
    }));
    const prefixAsns = [
      ...Array.from({ length: 60 }, () => ({ prefix: pick(nets).network, asn: 64500 + int(30) })),
      { prefix: '0.0.0.0/0', asn: 64500 + int(30) },
    ];
    const index = buildAttributionIndex({ organisations: orgs, networks: nets.map((n) => ({ ...n, abuseMailbox: rnd() < 0.3 ? `abuse@${n.orgId}.net` : null })), asns, domains, overrides, prefixAsns });
    const host = (): string => {
      const r = rnd();
      const base = rnd() < 0.6 ? `${name(1 + int(2))}.${pick(domains).domain}` : name(1 + int(4));
      if (r < 0.1) return base.toUpperCase();
      if (r < 0.15) return `${base}.`;
      if (r < 0.2) return ` ${base} `;
      if (r < 0.25) return `*.${base}`;
      if (r < 0.28) return ` *.${base}`;
      if (r < 0.3) return 'bücher.example';
      if (r < 0.32) return '192.0.2.1';
      if (r < 0.34) return 'a..b';
      return base;
    };
    const ip = (): string => {
      const r = rnd();
      const n = pick(nets).range;
      if (r < 0.05) return 'not-an-ip';
      if (r < 0.1) return `::ffff:${formatIp({ family: 4, value: 167772160 + int(2 ** 27) })}`;
      if (r < 0.15) return ` ${formatIp({ family: 4, value: int(2 ** 32) })} `;
      if (n.family === 4) return formatIp({ family: 4, value: n.first + int(n.last - n.first + 1) });
      return formatIp({ family: 6, value: n.first + (BigInt(int(2 ** 30)) % (n.last - n.first + 1n)) });
    };
    let withDomain = 0;
    for (let k = 0; k < 4000; k++) {
      const sanCount = rnd() < 0.05 ? 40 + int(40) : int(4);
      const facts = {
        ip: ip(),
        port: rnd() < 0.5 ? 443 : null,
        ...(rnd() < 0.4 ? { asn: 64500 + int(35) } : {}),
        ...(rnd() < 0.3 ? { requestHost: host() } : {}),
        ...(rnd() < 0.3 ? { feedHostname: host() } : {}),
        ...(rnd() < 0.6 ? { certificate: { cn: rnd() < 0.8 ? host() : null, sans: Array.from({ length: sanCount }, host) } } : {}),
        ...(rnd() < 0.4 ? { ptr: Array.from({ length: 1 + int(2) }, host) } : {}),
      };
      for (const candidates of [true, false]) {
        const got = attribute(index, facts, { candidates });
        assert.deepStrictEqual(got, attributeReference(index, facts, { candidates }), `seed ${seed}, ${JSON.stringify(facts)}`);
        if (candidates && got.candidates.some((c) => c.rule === 'domain')) withDomain++;
      }
    }
    // The generator must reach the domain rule's ordering, not only networks.
    assert.ok(withDomain > 500, `only ${withDomain} answers list a domain candidate`);
  }
});
