/**
 * Benchmark: `tocsin scan` vs Debian's nmap vs a bare Node TLS+GET client, on lab hosts on loopback,
 * in the same run (see bench/README.md). Loopback only: the lab serves BASE/N (127.0.0.0/8) and nothing
 * else is contacted.
 *
 *   npm run build && node --import tsx bench/scan-vs-nmap.ts [--estate all-exchange,default] [--latency 0,100]
 *       [--hosts 4096] [--base 127.1.0.0] [--repeat 3] [--workers 0,1,2] [--skip-nmap] [--dist DIR[,DIR...]] [--home DIR]
 *
 * Rounds: each estate at each latency (default: the all-Exchange estate at 0 and 100 ms, then the default
 * mix at 0 and 25 ms). Within a round the three runs alternate (tocsin, nmap, bare; tocsin, nmap, bare;
 * ...) `--repeat` times and the medians are printed: wall time, hosts/s, CPU per host (user+sys of the
 * process: tocsin and nmap as children under /usr/bin/time, the bare client as this process's
 * cpuUsage() around it), and ratios to the bare client and to nmap. After the rounds of an estate it
 * prints tocsin's throughput at each latency relative to latency 0. Exits 0 either way (not a test).
 */
import { fork, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bareScan } from './bare-client.js';
import { DEFAULT_MIX, LAB_MIXES, type LabMix } from '../lab/estate.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'bench', 'out');
const NMAP = '/usr/bin/nmap';
const TIME = '/usr/bin/time';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const HOSTS = Number(arg('--hosts') ?? 4096);
const BASE = arg('--base') ?? '127.1.0.0';
const WORKERS = (arg('--workers') ?? '0').split(',').map(Number);
const SKIP_NMAP = process.argv.includes('--skip-nmap');
const REPEAT = Math.max(1, Number(arg('--repeat') ?? 1));
/**
 * Tarpits and slow-drip hosts measure each tool's timeout settings, not its throughput (nmap waits
 * tens of seconds on them): they are left out of the default mix unless --hostile is given.
 */
const HOSTILE = process.argv.includes('--hostile');
const LAB_WORKERS = Number(arg('--lab-workers') ?? 1);
const CONCURRENCY = arg('--concurrency') === undefined ? null : Number(arg('--concurrency'));
/**
 * The bare client's best case: 2,048 handshakes started at once make a single-threaded lab serve them all
 * in lockstep (every one finishes late, most past the deadline); a few hundred in flight keep it busy
 * without that collapse. Measured here: 64 → 4,096 answered, 256 → 4,096 and the least CPU, 512 → 322 lost.
 */
const BARE_CONCURRENCY = Number(arg('--bare-concurrency') ?? 256);
/**
 * Directory of a compiled tree (default dist/): `npx tsc -p tsconfig.build.json --outDir DIR` keeps dist/ alone.
 * Several, comma-separated (`--dist bench/out/dist-before,dist`), alternate run by run in the same rounds, so a
 * change is measured against its baseline under the same load (each tree's rows are labelled with it).
 */
const DISTS = (arg('--dist') ?? 'dist').split(',').filter((d) => d !== '').map((d) => resolve(root, d));
/** TOCSIN_HOME of the scans; with several --dist trees, HOME-0, HOME-1, ... (one database per tree). */
const HOME = resolve(root, arg('--home') ?? join('bench', 'out', 'home'));
const EXTRA_ARGS = (arg('--tocsin-args') ?? '').split(' ').filter((s) => s !== '');

/** Default rounds: the all-Exchange estate (cost per host, latency ratio), then the default mix. */
const DEFAULT_ROUNDS: readonly { estate: string; latency: number }[] = [
  { estate: 'all-exchange', latency: 0 },
  { estate: 'all-exchange', latency: 100 },
  { estate: 'default', latency: 0 },
  { estate: 'default', latency: 25 },
];
function rounds(): { estate: string; latency: number }[] {
  const estates = arg('--estate')?.split(',');
  const latencies = arg('--latency')?.split(',').map(Number);
  let r = DEFAULT_ROUNDS.filter((x) => estates === undefined || estates.includes(x.estate));
  if (latencies !== undefined) {
    const names = [...new Set((estates ?? r.map((x) => x.estate)))];
    r = names.flatMap((estate) => latencies.map((latency) => ({ estate, latency })));
  }
  for (const x of r) if (!Object.hasOwn(LAB_MIXES, x.estate)) throw new Error(`--estate must be among ${Object.keys(LAB_MIXES).join(', ')}`);
  return r;
}

function mixOf(estate: string): LabMix {
  const m = LAB_MIXES[estate] ?? DEFAULT_MIX;
  return HOSTILE || estate !== 'default' ? m : { ...m, tarpit: 0, 'slow-drip': 0 };
}

if (!Number.isInteger(Math.log2(HOSTS)) || HOSTS < 1 || HOSTS > 65536) throw new Error('--hosts must be a power of two up to 65536');
const CIDR = `${BASE}/${32 - Math.log2(HOSTS)}`;
const baseParts = BASE.split('.').map(Number);
if (baseParts.length !== 4 || baseParts[0] !== 127) throw new Error('--base must be an address in 127.0.0.0/8');
const baseInt = baseParts.reduce((a, b) => a * 256 + b, 0);

interface LabHandle {
  readonly httpsPort: number;
  readonly exchange: number;
  close(): Promise<void>;
}

/** The lab in its own process (lab/child.ts), so its CPU is not the scanner's. */
async function startLabProcess(estate: string, latencyMs: number): Promise<LabHandle> {
  mkdirSync(out, { recursive: true });
  const truth = join(out, `truth-${estate}-${latencyMs}.jsonl`);
  rmSync(truth, { force: true });
  for (const httpsPort of [443, 0]) {
    const child = fork(join(root, 'lab', 'child.ts'), [JSON.stringify({ hosts: HOSTS, base: BASE, seed: 1, httpsPort, httpPort: 0, latencyMs, truthPath: truth, mix: mixOf(estate), workers: LAB_WORKERS })], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const msg = await new Promise<{ type: string; httpsPort?: number; message?: string }>((res) => {
      child.once('message', (m) => res(m as { type: string }));
      child.once('exit', () => res({ type: 'error', message: 'lab exited' }));
    });
    if (msg.type !== 'ready' || msg.httpsPort === undefined) {
      child.kill();
      if (httpsPort === 443) {
        process.stderr.write('bench: port 443 is busy; the lab uses an ephemeral port (nmap then may not speak TLS to it: its row is not comparable)\n');
        continue;
      }
      throw new Error(`lab failed: ${msg.message ?? '?'}`);
    }
    await new Promise((r) => setTimeout(r, 300)); // the truth file is written once listening
    const exchange = existsSync(truth)
      ? readFileSync(truth, 'utf8').split('\n').filter((l) => l.includes('"product":"ms-exchange"')).length
      : -1;
    return {
      httpsPort: msg.httpsPort,
      exchange,
      close: () => new Promise<void>((res) => {
        child.once('exit', () => res());
        child.send({ type: 'close' });
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
    };
  }
  throw new Error('unreachable');
}

interface Run {
  readonly seconds: number;
  /** user+sys CPU seconds of the process (NaN when unknown). */
  readonly cpu: number;
  readonly ok: boolean;
  readonly note: string;
}

interface Timed {
  readonly seconds: number;
  readonly cpu: number;
  readonly maxRssKb: number;
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a child to completion: wall time measured here, user+sys CPU and peak RSS by GNU time (`-o`, so
 * the child's own stderr stays clean). Without /usr/bin/time the CPU column is left empty.
 */
function timeChild(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Timed> {
  const rusage = join(out, `rusage-${process.pid}.txt`);
  rmSync(rusage, { force: true });
  const viaTime = existsSync(TIME);
  const [c0, a0] = viaTime ? [TIME, ['-f', '%U %S %M', '-o', rusage, cmd, ...args]] : [cmd, [...args]];
  return new Promise((res) => {
    const t0 = process.hrtime.bigint();
    const c = spawn(c0, a0, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let so = '';
    let se = '';
    c.stdout.on('data', (b: Buffer) => (so += b.toString()));
    c.stderr.on('data', (b: Buffer) => (se += b.toString()));
    c.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      let cpu = NaN;
      let maxRssKb = NaN;
      if (viaTime && existsSync(rusage)) {
        const last = readFileSync(rusage, 'utf8').trim().split('\n').pop() ?? '';
        const [u, s, m] = last.split(' ').map(Number);
        if (u !== undefined && s !== undefined) cpu = u + s;
        if (m !== undefined) maxRssKb = m;
      }
      res({ seconds, cpu, maxRssKb, code, stdout: so, stderr: se });
    });
  });
}

function tocsinCommand(dist: string): { cmd: string; pre: string[]; how: string; label: string } {
  const entry = join(dist, 'src', 'bin', 'tocsin.js');
  const label = DISTS.length > 1 ? ` ${dist.startsWith(root) ? dist.slice(root.length + 1) : dist}` : '';
  if (existsSync(join(dist, 'src', 'cli', 'scan.js'))) return { cmd: process.execPath, pre: [entry], how: dist === join(root, 'dist') ? 'compiled dist' : `compiled ${dist}`, label };
  return { cmd: process.execPath, pre: ['--import', 'tsx', join(root, 'src', 'bin', 'tocsin.ts')], how: 'tsx (run `npm run build` for the compiled CLI)', label };
}

function median(xs: readonly number[]): number {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[m] as number) : ((v[m - 1] as number) + (v[m] as number)) / 2;
}

/** Exchange hosts in tocsin's JSONL and how many of them match the truth's expected build. */
function compareWithTruth(jsonl: string, truthPath: string): { exchange: number; right: number } {
  const want = new Map<string, string | null>();
  if (existsSync(truthPath)) {
    for (const l of readFileSync(truthPath, 'utf8').split('\n')) {
      if (l === '') continue;
      const h = JSON.parse(l) as { ip: string; expected: { product: string | null; build: string | null } };
      if (h.expected.product === 'ms-exchange') want.set(h.ip, h.expected.build);
    }
  }
  let exchange = 0;
  let right = 0;
  for (const l of jsonl.split('\n')) {
    if (!l.includes('"product":"ms-exchange"')) continue;
    exchange++;
    const r = JSON.parse(l) as { ip: string; build: string | null };
    if (want.get(r.ip) === r.build) right++;
  }
  return { exchange, right };
}

const results: { estate: string; latency: number; run: string; tocsinHostsPerS: number }[] = [];

async function round(estate: string, latencyMs: number): Promise<void> {
  const lab = await startLabProcess(estate, latencyMs);
  const runs = new Map<string, Run[]>();
  const add = (name: string, r: Run): void => {
    const list = runs.get(name) ?? [];
    list.push(r);
    runs.set(name, list);
  };
  // One database per tree when several are compared: trees of different versions may hold different
  // migrations, and a tree refuses a database that a newer one migrated (stop 14: exit 70 on every base run).
  const trees = DISTS.map((d, i) => ({ ...tocsinCommand(d), env: { ...process.env, TOCSIN_HOME: DISTS.length > 1 ? `${HOME}-${i}` : HOME } }));
  const truth = join(out, `truth-${estate}-${latencyMs}.jsonl`);
  const ips = Array.from({ length: HOSTS }, (_, i) => {
    const n = baseInt + i;
    return `${Math.floor(n / 16777216) % 256}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  });
  try {
    // Warm-up (untimed): creates the embedded database on first use, warms the page cache.
    for (const t of trees) await timeChild(t.cmd, [...t.pre, 'scan', BASE, '--ports', `${lab.httpsPort}/tls`, '--no-progress', '--output', '/dev/null'], t.env);
    for (let rep = 0; rep < REPEAT; rep++) {
      for (const t of trees) for (const w of WORKERS) {
        const file = join(out, `tocsin-${estate}-${latencyMs}.jsonl`);
        rmSync(file, { force: true });
        const r = await timeChild(t.cmd, [...t.pre, 'scan', CIDR, '--ports', `${lab.httpsPort}/tls`, '--no-progress',
          ...(CONCURRENCY === null ? [] : ['--concurrency', String(CONCURRENCY)]),
          '--workers', String(w), ...EXTRA_ARGS, '--output', file], t.env);
        const c = compareWithTruth(existsSync(file) ? readFileSync(file, 'utf8') : '', truth);
        add(`tocsin scan (workers ${w === 0 ? 'auto' : w})${t.label}`, {
          seconds: r.seconds,
          cpu: r.cpu,
          // exit 3: finished, some attempts unanswered (counted: a run that loses hosts is a real, bad run)
          ok: r.code === 0 || r.code === 3,
          note: `${r.code === 0 ? '' : `exit ${r.code} (${r.stderr.trim().split('\n').pop()?.slice(0, 200) ?? ''}); `}` +
            `${c.exchange}/${lab.exchange} Exchange found, ${c.right} with the expected build; ` +
            `${/\d+ timed out, \d+ retried, \d+ unanswered/.exec(r.stderr)?.[0] ?? 'no timeouts'}; stored; ${Math.round(r.maxRssKb / 1024)} MB peak; ${t.how}`,
        });
      }
      if (SKIP_NMAP) add('nmap http-headers', { seconds: NaN, cpu: NaN, ok: false, note: 'skipped (--skip-nmap)' });
      else if (!existsSync(NMAP)) add('nmap http-headers', { seconds: NaN, cpu: NaN, ok: false, note: 'not installed: apt-get install nmap' });
      else {
        const v = spawnSync(NMAP, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? '';
        const r = await timeChild(NMAP, ['-n', '-Pn', '-p', String(lab.httpsPort), '--script', '+http-headers', '--script-args', 'http-headers.path=/owa/auth/logon.aspx', CIDR]);
        const got = (r.stdout.match(/X-OWA-Version/gi) ?? []).length;
        add('nmap http-headers', { seconds: r.seconds, cpu: r.cpu, ok: true, note: `${v}; ${got} responses with X-OWA-Version` });
      }
      // The baseline's best case: in this (warm) process, no process start, nothing parsed or stored.
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const bare = await bareScan(ips, lab.httpsPort, BARE_CONCURRENCY);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const cu = process.cpuUsage(c0);
      add('bare Node TLS+GET', { seconds, cpu: (cu.user + cu.system) / 1e6, ok: true, note: `concurrency ${BARE_CONCURRENCY}: ${bare.answered} answered, ${bare.failed} failed; one GET, nothing parsed or stored` });
    }
  } finally {
    await lab.close();
  }
  // Medians over the runs that finished (a run that failed, e.g. its database killed by other work on the
  // machine, says nothing about speed; its note is still printed).
  const med = (name: string, f: (r: Run) => number): number => {
    const list = runs.get(name) ?? [];
    const ok = list.filter((r) => r.ok);
    return median((ok.length > 0 ? ok : list).map(f));
  };
  const bareS = med('bare Node TLS+GET', (r) => r.seconds);
  const bareCpu = med('bare Node TLS+GET', (r) => r.cpu);
  const nmapS = med('nmap http-headers', (r) => r.seconds);
  const fmt = (x: number, d: number, w: number): string => (Number.isFinite(x) ? x.toFixed(d) : '-').padStart(w);
  process.stdout.write(`\n${HOSTS} lab hosts (${CIDR}), estate ${estate}${HOSTILE ? ' with tarpits and slow-drip hosts' : ''}, lab latency ${latencyMs} ms, ` +
    `concurrency ${CONCURRENCY ?? 'default'}, port ${lab.httpsPort}, median of ${REPEAT}\n`);
  process.stdout.write(`${'run'.padEnd(40)} ${'wall s'.padStart(7)} ${'hosts/s'.padStart(7)} ${'CPU ms/host'.padStart(11)} ${'x bare wall'.padStart(11)} ${'x bare CPU'.padStart(10)} ${'x nmap'.padStart(6)}  notes\n`);
  for (const [name, list] of runs) {
    const s = med(name, (r) => r.seconds);
    const cpu = med(name, (r) => r.cpu);
    const notes = [...new Set(list.map((r) => r.note))].join(' | ');
    const all = list.map((r) => `${r.seconds.toFixed(2)}s/${Number.isFinite(r.cpu) ? r.cpu.toFixed(2) : '-'}cpu`).join(' ');
    process.stdout.write(`${name.padEnd(40)} ${fmt(s, 2, 7)} ${fmt(HOSTS / s, 0, 7)} ${fmt((cpu * 1000) / HOSTS, 3, 11)} ${fmt(s / bareS, 2, 11)} ${fmt(cpu / bareCpu, 2, 10)} ${fmt(s / nmapS, 2, 6)}  ${notes}${REPEAT > 1 ? ` [runs: ${all}]` : ''}\n`);
    if (name.startsWith('tocsin') && results.every((x) => !(x.estate === estate && x.latency === latencyMs && x.run === name))) {
      results.push({ estate, latency: latencyMs, run: name, tocsinHostsPerS: HOSTS / s });
    }
  }
}

for (const r of rounds()) await round(r.estate, r.latency);
for (const r of results) {
  const zero = results.find((x) => x.estate === r.estate && x.latency === 0 && x.run === r.run);
  if (r.latency === 0 || zero === undefined) continue;
  process.stdout.write(`\nestate ${r.estate}, ${r.run}: throughput at ${r.latency} ms lab latency / at 0 ms = ` +
    `${r.tocsinHostsPerS.toFixed(0)} / ${zero.tocsinHostsPerS.toFixed(0)} hosts/s = ${(r.tocsinHostsPerS / zero.tocsinHostsPerS).toFixed(2)}\n`);
}
