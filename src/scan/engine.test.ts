import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_TLS_TRIES, runScan, type ScanTarget } from './engine.js';
import type { ScanKit, FingerprintLike, KbLike, KitProduct } from './kit.js';
import type { AttemptResult } from './ports.js';
import type { HostSession, ProbeOutcome, ProbeTarget } from '../core/contracts/probe.js';
import { DEFAULT_LIMITS } from '../core/contracts/probe.js';
import type { Fact, ProbeRequest, ProbeResponse } from '../products/sdk.js';
import { attemptKey } from './ports.js';
import { ManualClock } from '../../test/helpers/manual-clock.js';

const PROBES: readonly ProbeRequest[] = [
  { id: 'a', method: 'GET', path: '/a', purpose: 'first' },
  { id: 'b', method: 'GET', path: '/b', purpose: 'second' },
];

const kb: KbLike = {
  assess: (build, precision) => ({
    edition: 'Exchange Server 2016', cu: 'CU19', su: precision === 'exact' ? 'Mar21SU' : null,
    vulnerable: build.endsWith('.9') ? [] : ['CVE-2021-26855'], indeterminate: [], notes: [], known: true,
  }),
};

function response(probeId: string, status: number, headers: Array<[string, string]> = []): ProbeResponse {
  return { probeId, url: `https://x/${probeId}`, status, statusLine: `HTTP/1.1 ${status} X`, headers, body: Buffer.alloc(0), truncated: false, redirects: [] };
}

interface FakeNet {
  kit: ScanKit;
  opened: ProbeTarget[];
  maxOpen: () => number;
}

/** A fake network: `behaviour(target)` says how each request of that target ends. */
function fakeKit(behaviour: (t: ProbeTarget, probe: ProbeRequest) => ProbeOutcome, opts: { delayMs?: number; throwOn?: string } = {}): FakeNet {
  const opened: ProbeTarget[] = [];
  let open = 0;
  let maxOpen = 0;
  const kit: ScanKit = {
    openSession(target): HostSession {
      opened.push(target);
      open++;
      maxOpen = Math.max(maxOpen, open);
      let closed = false;
      return {
        tlsCert: null,
        async request(p) {
          await new Promise((r) => setTimeout(r, opts.delayMs ?? 0));
          return behaviour(target, p);
        },
        close() {
          if (!closed) open--;
          closed = true;
        },
      };
    },
    products: [{
      id: 'ms-exchange',
      name: 'Exchange',
      nextProbes(answered, sent) {
        if (!sent.has('a')) return [PROBES[0]!];
        if (answered.get('a')?.headers.some(([k]) => k === 'x-more') === true && !sent.has('b')) return [PROBES[1]!];
        return [];
      },
      runDetectors(responses) {
        if (opts.throwOn !== undefined && [...responses.values()].some((r) => r.url.includes(opts.throwOn ?? '#'))) throw new Error('detector bug');
        const ex = responses.get('a')?.headers.find(([k]) => k === 'x-build');
        return {
          facts: ex === undefined ? [] : [{ kind: 'build', build: ex[1], precision: 'exact', evidence: { detector: 'd', probe: 'a', url: 'u', where: 'header', excerpt: ex[1] } }],
          revisions: { d: 1 },
        };
      },
      fingerprint(facts): FingerprintLike {
        const b = facts.find((f) => f.kind === 'build');
        if (b === undefined || b.kind !== 'build') return { product: null, build: null, precision: null, evidence: [], notes: [] };
        return { product: 'ms-exchange', build: b.build, precision: b.precision, evidence: [b.evidence], notes: [] };
      },
      kb,
    }],
    };
  return { kit, opened, maxOpen: () => maxOpen };
}

function targets(n: number, prefix = '127.9.0.'): ScanTarget[] {
  return Array.from({ length: n }, (_, i) => ({ ip: `${prefix}${i}`, hostname: null }));
}

test('every target is attempted once, concurrency is bounded, excluded hosts are never contacted', async () => {
  const net = fakeKit((t, p) => ({ kind: 'ok', response: response(p.id, t.ip.endsWith('.7') ? 200 : 404, t.ip.endsWith('.7') ? [['x-build', '15.1.2176.2']] : []) }), { delayMs: 2 });
  const results: AttemptResult[] = [];
  const stats = await runScan({
    targets: targets(50), ports: [{ port: 443, mode: 'tls' }], concurrency: 8, limits: DEFAULT_LIMITS, kit: net.kit,
    isExcluded: (ip) => ip === '127.9.0.3',
    onResult: (r) => {
      results.push(r);
    },
  });
  assert.equal(results.length, 50);
  assert.equal(new Set(results.map((r) => r.ip)).size, 50);
  assert.ok(net.maxOpen() <= 8, `max open ${net.maxOpen()}`);
  assert.equal(net.opened.some((t) => t.ip === '127.9.0.3'), false);
  assert.equal(results.find((r) => r.ip === '127.9.0.3')?.outcome, 'excluded');
  const ex = results.find((r) => r.ip === '127.9.0.7');
  assert.equal(ex?.record?.product, 'ms-exchange');
  assert.deepEqual(ex?.record?.vulnerable, ['CVE-2021-26855']);
  assert.equal(stats.exchange, 1);
  assert.equal(stats.excluded, 1);
  assert.equal(stats.answered, 49);
});

test('resume: done keys are skipped without contact', async () => {
  const net = fakeKit((_t, p) => ({ kind: 'ok', response: response(p.id, 404) }));
  const results: AttemptResult[] = [];
  const done = new Set([attemptKey('127.9.0.1', 443), attemptKey('127.9.0.2', 443)]);
  const stats = await runScan({ targets: targets(5), ports: [{ port: 443, mode: 'tls' }], concurrency: 3, limits: DEFAULT_LIMITS, kit: net.kit, done, onResult: (r) => void results.push(r) });
  assert.deepEqual(results.map((r) => r.ip).sort(), ['127.9.0.0', '127.9.0.3', '127.9.0.4']);
  assert.equal(stats.skipped, 2);
  assert.equal(net.opened.length, 3);
});

test('the probe plan runs until nextProbes is empty; a failure before any answer ends the attempt', async () => {
  const net = fakeKit((t, p) => {
    if (t.ip.endsWith('.0')) return { kind: 'ok', response: response(p.id, 200, [['x-more', '1']]) };
    return { kind: 'timeout', phase: 'request', detail: 'request: 5000 ms' };
  });
  const results: AttemptResult[] = [];
  await runScan({ targets: targets(2), ports: [{ port: 443, mode: 'tls' }], concurrency: 2, limits: DEFAULT_LIMITS, kit: net.kit, onResult: (r) => void results.push(r) });
  const a = results.find((r) => r.ip === '127.9.0.0');
  const b = results.find((r) => r.ip === '127.9.0.1');
  assert.equal(a?.outcome, 'answered');
  assert.equal(a?.record?.status, 200);
  assert.equal(b?.outcome, 'timeout');
  assert.equal(b?.detail, 'request: 5000 ms');
  assert.equal(b?.record, null);
});

test("port mode 'auto' tries TLS first, then plain HTTP when the peer does not speak TLS", async () => {
  const net = fakeKit((t, p) => (t.tls ? { kind: 'tls-error', phase: 'tls', detail: 'tls: wrong version' } : { kind: 'ok', response: response(p.id, 404) }));
  const results: AttemptResult[] = [];
  await runScan({ targets: targets(1), ports: [{ port: 8000, mode: 'auto' }, { port: 81, mode: 'tls' }], concurrency: 2, limits: DEFAULT_LIMITS, kit: net.kit, onResult: (r) => void results.push(r) });
  assert.deepEqual(net.opened.filter((t) => t.port === 8000).map((t) => t.tls), [true, false]);
  assert.equal(results.find((r) => r.port === 8000)?.record?.tls, false);
  assert.equal(results.find((r) => r.port === 81)?.outcome, 'tls-error');
});

test('shards partition the targets deterministically', async () => {
  const seen: string[][] = [];
  for (let index = 0; index < 3; index++) {
    const net = fakeKit((_t, p) => ({ kind: 'ok', response: response(p.id, 404) }));
    const got: string[] = [];
    await runScan({ targets: targets(10), ports: [{ port: 443, mode: 'tls' }], concurrency: 4, limits: DEFAULT_LIMITS, kit: net.kit, shard: { index, count: 3 }, onResult: (r) => void got.push(r.ip) });
    seen.push(got);
  }
  const all = seen.flat().sort();
  assert.deepEqual(all, targets(10).map((t) => t.ip).sort());
  assert.equal(new Set(all).size, 10);
});

test('a detector that throws on hostile input does not stop the scan', async () => {
  const net = fakeKit((t, p) => ({ kind: 'ok', response: { ...response(p.id, 200), url: `https://${t.ip}/${p.id}` } }), { throwOn: '127.9.0.1/' });
  const results: AttemptResult[] = [];
  const warnings: string[] = [];
  await runScan({ targets: targets(3), ports: [{ port: 443, mode: 'tls' }], concurrency: 2, limits: DEFAULT_LIMITS, kit: net.kit, onResult: (r) => void results.push(r), onWarning: (m) => void warnings.push(m) });
  assert.equal(results.length, 3);
  assert.equal(results.find((r) => r.ip === '127.9.0.1')?.outcome, 'protocol-error');
  assert.equal(warnings.length, 1);
});

test('abort stops the scan without reporting unfinished attempts', async () => {
  const ac = new AbortController();
  const net = fakeKit((_t, p) => ({ kind: 'ok', response: response(p.id, 404) }), { delayMs: 5 });
  const results: AttemptResult[] = [];
  await runScan({
    targets: targets(200), ports: [{ port: 443, mode: 'tls' }], concurrency: 4, limits: DEFAULT_LIMITS, kit: net.kit, signal: ac.signal,
    onResult: (r) => {
      results.push(r);
      if (results.length === 10) ac.abort();
    },
  });
  assert.ok(results.length >= 10 && results.length < 200, `results ${results.length}`);
  assert.ok(net.opened.length < 200);
});

test('an infinite target iterator is consumed lazily (bounded memory)', async () => {
  function* forever(): Generator<ScanTarget> {
    for (let i = 0; ; i++) yield { ip: `127.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, hostname: null };
  }
  const ac = new AbortController();
  const net = fakeKit((_t, p) => ({ kind: 'ok', response: response(p.id, 404) }));
  let n = 0;
  await runScan({ targets: forever(), ports: [{ port: 443, mode: 'tls' }], concurrency: 16, limits: DEFAULT_LIMITS, kit: net.kit, signal: ac.signal, onResult: () => {
    if (++n === 500) ac.abort();
  } });
  assert.ok(n >= 500 && n < 600, `n ${n}`);
});

test('a failing result sink stops the whole scan and the error surfaces', async () => {
  const net = fakeKit((_t, p) => ({ kind: 'ok', response: response(p.id, 404) }), { delayMs: 2 });
  let calls = 0;
  await assert.rejects(runScan({
    targets: targets(200), ports: [{ port: 443, mode: 'tls' }], concurrency: 8, limits: DEFAULT_LIMITS, kit: net.kit,
    onResult: async () => {
      if (++calls === 5) throw new Error('database went away');
    },
  }), /database went away/);
  assert.ok(net.opened.length < 200, `opened ${net.opened.length}`);
});

test('TLS handshake timeouts (congestion) are tried again after a backoff; each host is reported once', async () => {
  const tries = new Map<string, number>();
  const net = fakeKit((t, p) => {
    const n = (tries.get(t.ip) ?? 0) + 1;
    tries.set(t.ip, n);
    // .1 is congested on its first try only; .2 is a tarpit (always times out).
    if ((t.ip.endsWith('.1') && n === 1) || t.ip.endsWith('.2')) return { kind: 'timeout', phase: 'tls', detail: 'TLS handshake timeout after 3000 ms' };
    return { kind: 'ok', response: response(p.id, 404) };
  });
  const results: AttemptResult[] = [];
  const clock = new ManualClock();
  let finished = false;
  const run = runScan({ targets: targets(4), ports: [{ port: 443, mode: 'tls' }], concurrency: 4, limits: DEFAULT_LIMITS, kit: net.kit, clock, onResult: (r) => void results.push(r) })
    .finally(() => {
      finished = true;
    });
  for (let i = 0; i < 400 && !finished; i++) {
    await new Promise((r) => setTimeout(r, 2));
    void clock.advance(100);
  }
  await run;
  assert.equal(results.length, 4);
  assert.equal(new Set(results.map((r) => r.ip)).size, 4);
  assert.equal(results.find((r) => r.ip === '127.9.0.1')?.outcome, 'answered');
  assert.equal(results.find((r) => r.ip === '127.9.0.2')?.outcome, 'timeout');
  assert.equal(tries.get('127.9.0.2'), MAX_TLS_TRIES, 'a tarpit costs a bounded number of tries');
  assert.equal(results.find((r) => r.ip === '127.9.0.2')?.unanswered, false, 'it connected: a final timeout, not unanswered');
  assert.equal(tries.get('127.9.0.0'), 1);
});


test('connect timeouts are retried after a backoff; an address that never answers is reported once, unanswered', async () => {
  const tries = new Map<string, number>();
  const triedAt = new Map<string, number[]>();
  const clock = new ManualClock();
  const net = fakeKit((t, p) => {
    const n = (tries.get(t.ip) ?? 0) + 1;
    tries.set(t.ip, n);
    triedAt.set(t.ip, [...(triedAt.get(t.ip) ?? []), clock.now()]);
    // .1: SYN dropped once (a full accept queue); .2: never answers; the rest answer.
    if ((t.ip.endsWith('.1') && n === 1) || t.ip.endsWith('.2')) return { kind: 'timeout', phase: 'connect', detail: 'connect timeout after 3000 ms' };
    return { kind: 'ok', response: response(p.id, 404) };
  });
  const results: AttemptResult[] = [];
  let finished = false;
  const run = runScan({
    targets: targets(4), ports: [{ port: 443, mode: 'tls' }], concurrency: 4, limits: DEFAULT_LIMITS, kit: net.kit, clock, maxLoopLagMs: 0,
    onResult: (r) => void results.push(r),
  }).finally(() => {
    finished = true;
  });
  for (let i = 0; i < 400 && !finished; i++) {
    await new Promise((r) => setTimeout(r, 2));
    void clock.advance(100);
  }
  const stats = await run;
  assert.equal(results.length, 4, 'each address reported exactly once');
  const by = (ip: string): AttemptResult | undefined => results.find((r) => r.ip === ip);
  assert.equal(by('127.9.0.1')?.outcome, 'answered', 'a dropped SYN is not a lost host');
  assert.equal(by('127.9.0.1')?.tries, 2);
  assert.equal(by('127.9.0.2')?.outcome, 'timeout');
  assert.equal(by('127.9.0.2')?.unanswered, true, 'stored as unanswered, so a resume tries it again');
  assert.equal(by('127.9.0.2')?.tries, 3);
  assert.equal(by('127.9.0.0')?.tries, undefined);
  assert.equal(by('127.9.0.0')?.unanswered, undefined);
  assert.equal(tries.get('127.9.0.0'), 1);
  // Backoff: the second retry waits about twice as long as the first (times the spread), never 0.
  const [t1, t2, t3] = triedAt.get('127.9.0.2') ?? [];
  assert.ok(t1 !== undefined && t2 !== undefined && t3 !== undefined);
  assert.ok(t2 - t1 >= 1000, `first retry after ${t2 - t1} ms`);
  assert.ok(t3 - t2 >= 2000, `second retry after ${t3 - t2} ms`);
  assert.deepEqual({ retried: stats.retried, unanswered: stats.unanswered, timedOut: stats.timedOut, answered: stats.answered },
    { retried: 2, unanswered: 1, timedOut: 1, answered: 3 });
});

test('failures congestion does not explain are not retried (refused, request timeout, protocol error)', async () => {
  const tries = new Map<string, number>();
  const net = fakeKit((t) => {
    tries.set(t.ip, (tries.get(t.ip) ?? 0) + 1);
    if (t.ip.endsWith('.0')) return { kind: 'refused', phase: 'connect', detail: 'connect: ECONNREFUSED', code: 'ECONNREFUSED' };
    if (t.ip.endsWith('.1')) return { kind: 'timeout', phase: 'request', detail: 'request timeout after 5000 ms' };
    return { kind: 'protocol-error', phase: 'request', detail: 'not HTTP' };
  });
  const results: AttemptResult[] = [];
  const stats = await runScan({ targets: targets(3), ports: [{ port: 443, mode: 'tls' }], concurrency: 3, limits: DEFAULT_LIMITS, kit: net.kit, clock: new ManualClock(), maxLoopLagMs: 0, onResult: (r) => void results.push(r) });
  assert.deepEqual([...tries.values()], [1, 1, 1]);
  assert.equal(results.every((r) => r.unanswered === undefined && r.tries === undefined), true);
  assert.equal(stats.retried + stats.unanswered, 0);
  assert.equal(stats.timedOut, 1);
});

test('several products: both plans on one session, the first product claiming the service names the record', async () => {
  const seen: string[] = [];
  const only = (probe: ProbeRequest, claims: (r: ProbeResponse) => boolean, id: string): KitProduct => ({
    id,
    name: id,
    nextProbes: (_answered, sent) => (sent.has(probe.id) ? [] : [probe]),
    runDetectors: (responses) => {
      const r = responses.get(probe.id);
      const facts: Fact[] = r !== undefined && claims(r) ? [{ kind: 'build', build: '1.2.3.4', precision: 'exact', evidence: { detector: `${id}-d`, probe: probe.id, url: r.url, where: 'status', excerpt: 'x' } }] : [];
      return { facts, revisions: { [`${id}-d`]: 2 } };
    },
    fingerprint: (facts) => (facts.length > 0 ? { product: id, build: '1.2.3.4', precision: 'exact', evidence: [], notes: [] } : { product: null, build: null, precision: null, evidence: [], notes: [`not ${id}`] }),
    kb: { assess: () => ({ edition: id, cu: null, su: null, vulnerable: [`CVE-2099-000${id.length}`], indeterminate: [], notes: [], known: true }) },
  });
  // Host .1 answers both probes with 200 (both products would claim it: registry order decides), .2 only b.
  const kit: ScanKit = {
    openSession(target): HostSession {
      return {
        tlsCert: null,
        async request(p) {
          seen.push(`${target.ip} ${p.id}`);
          const ok = target.ip.endsWith('.1') || (target.ip.endsWith('.2') && p.id === 'b');
          return { kind: 'ok', response: response(p.id, ok ? 200 : 404) };
        },
        close() {},
      };
    },
    products: [only(PROBES[0]!, (r) => r.status === 200, 'first'), only(PROBES[1]!, (r) => r.status === 200, 'second-one')],
  };
  const results: AttemptResult[] = [];
  const stats = await runScan({
    targets: targets(3, '127.9.5.'), ports: [{ port: 80, mode: 'http' }], concurrency: 1, limits: DEFAULT_LIMITS, kit, maxLoopLagMs: 0,
    onResult: (r) => {
      results.push(r);
    },
  });
  assert.deepEqual(seen.filter((x) => x.startsWith('127.9.5.1 ')), ['127.9.5.1 a', '127.9.5.1 b'], 'both plans, each probe once');
  const byIp = new Map(results.map((r) => [r.ip, r]));
  assert.equal(byIp.get('127.9.5.1')?.record?.product, 'first');
  assert.deepEqual(byIp.get('127.9.5.1')?.record?.vulnerable, ['CVE-2099-0005'], "the claiming product's knowledge base");
  assert.equal(byIp.get('127.9.5.1')?.facts.length, 2, "every product's facts are kept");
  assert.deepEqual(byIp.get('127.9.5.1')?.detectorRevisions, { 'first-d': 2, 'second-one-d': 2 });
  assert.equal(byIp.get('127.9.5.2')?.record?.product, 'second-one');
  assert.deepEqual(byIp.get('127.9.5.2')?.record?.vulnerable, ['CVE-2099-00010']);
  assert.equal(byIp.get('127.9.5.0')?.record?.product, null);
  assert.deepEqual(byIp.get('127.9.5.0')?.record?.notes, ['not first'], "nobody claims it: the first product's conclusion");
  assert.equal(stats.exchange, 2, 'services claimed by a product');
});
