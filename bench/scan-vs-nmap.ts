/**
 * Benchmark: `tocsin scan` vs Debian's nmap vs a bare Node TLS+GET client, on lab hosts on loopback,
 * in the same run (see bench/README.md). Loopback only: the lab serves 127.1.0.0/N and nothing else is
 * contacted.
 *
 *   npm run build && node --import tsx bench/scan-vs-nmap.ts [--hosts 4096] [--latency 25] [--workers 1,2] [--skip-nmap]
 *
 * Without --latency it runs two rounds: no added latency, then 25 ms (the lab delays each accepted
 * connection and each response). Prints wall times and ratios; exits 0 either way (not a test).
 */
import { fork, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bareScan } from './bare-client.js';
import { DEFAULT_MIX } from '../lab/estate.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'bench', 'out');
const NMAP = '/usr/bin/nmap';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const HOSTS = Number(arg('--hosts') ?? 4096);
const LATENCIES = arg('--latency') === undefined ? [0, 25] : [Number(arg('--latency'))];
const WORKERS = (arg('--workers') ?? '0').split(',').map(Number);
const SKIP_NMAP = process.argv.includes('--skip-nmap');
/**
 * Tarpits and slow-drip hosts measure each tool's timeout settings, not its throughput (nmap waits
 * tens of seconds on them): they are left out unless --hostile is given. Everything else of the
 * default estate (Exchange of every edition, IIS, nginx, phishing clones, Exchange Online, garbage,
 * oversized and hostile-header hosts, closed ports) is in.
 */
const HOSTILE = process.argv.includes('--hostile');
const MIX = HOSTILE ? DEFAULT_MIX : { ...DEFAULT_MIX, tarpit: 0, 'slow-drip': 0 };
const LAB_WORKERS = Number(arg('--lab-workers') ?? 1);
const CONCURRENCY = Number(arg('--concurrency') ?? 2048);
const BASE = '127.1.0.0';

if (!Number.isInteger(Math.log2(HOSTS)) || HOSTS < 1 || HOSTS > 65536) throw new Error('--hosts must be a power of two up to 65536');
const CIDR = `${BASE}/${32 - Math.log2(HOSTS)}`;

interface LabHandle {
  readonly httpsPort: number;
  readonly exchange: number;
  close(): Promise<void>;
}

/** The lab in its own process (lab/child.ts), so its CPU is not the scanner's. */
async function startLabProcess(latencyMs: number): Promise<LabHandle> {
  mkdirSync(out, { recursive: true });
  const truth = join(out, `truth-${latencyMs}.jsonl`);
  for (const httpsPort of [443, 0]) {
    const child = fork(join(root, 'lab', 'child.ts'), [JSON.stringify({ hosts: HOSTS, base: BASE, seed: 1, httpsPort, httpPort: 0, latencyMs, truthPath: truth, mix: MIX, workers: LAB_WORKERS })], {
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

interface Row {
  readonly name: string;
  readonly seconds: number;
  readonly note: string;
}

function timeChild(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<{ seconds: number; code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const t0 = process.hrtime.bigint();
    const c = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let so = '';
    let se = '';
    c.stdout.on('data', (b: Buffer) => (so += b.toString()));
    c.stderr.on('data', (b: Buffer) => (se += b.toString()));
    c.on('close', (code) => res({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, code, stdout: so, stderr: se }));
  });
}

function tocsinCommand(): { cmd: string; pre: string[]; how: string } {
  const dist = join(root, 'dist', 'src', 'bin', 'tocsin.js');
  if (existsSync(join(root, 'dist', 'src', 'cli', 'scan.js'))) return { cmd: process.execPath, pre: [dist], how: 'compiled dist' };
  return { cmd: process.execPath, pre: ['--import', 'tsx', join(root, 'src', 'bin', 'tocsin.ts')], how: 'tsx (run `npm run build` for the compiled CLI)' };
}

async function round(latencyMs: number): Promise<void> {
  const lab = await startLabProcess(latencyMs);
  const rows: Row[] = [];
  const t = tocsinCommand();
  const env = { ...process.env, TOCSIN_HOME: join(out, 'home') };
  try {
    // Warm-up (untimed): creates the embedded database on first use, warms the page cache.
    await timeChild(t.cmd, [...t.pre, 'scan', `${BASE}`, '--ports', `${lab.httpsPort}/tls`, '--output', '/dev/null'], env);
    for (const w of WORKERS) {
      const r = await timeChild(t.cmd, [...t.pre, 'scan', CIDR, '--ports', `${lab.httpsPort}/tls`, '--concurrency', String(CONCURRENCY),
        '--workers', String(w), '--output', join(out, `tocsin-${latencyMs}.jsonl`)], env);
      const lines = existsSync(join(out, `tocsin-${latencyMs}.jsonl`)) ? readFileSync(join(out, `tocsin-${latencyMs}.jsonl`), 'utf8').split('\n') : [];
      const exchange = lines.filter((l) => l.includes('"product":"ms-exchange"')).length;
      rows.push({
        name: `tocsin scan (workers ${w === 0 ? 'auto' : w})`,
        seconds: r.seconds,
        note: r.code === 0 ? `${exchange} Exchange found (lab truth ${lab.exchange}); stored; ${t.how}` : `exit ${r.code}: ${r.stderr.slice(-300)}`,
      });
    }
    if (SKIP_NMAP) rows.push({ name: 'nmap http-headers', seconds: NaN, note: 'skipped (--skip-nmap)' });
    else if (!existsSync(NMAP)) rows.push({ name: 'nmap http-headers', seconds: NaN, note: 'not installed: apt-get install nmap' });
    else {
      const v = spawnSync(NMAP, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? '';
      const r = await timeChild(NMAP, ['-n', '-Pn', '-p', String(lab.httpsPort), '--script', '+http-headers', '--script-args', 'http-headers.path=/owa/auth/logon.aspx', CIDR]);
      const got = (r.stdout.match(/X-OWA-Version/gi) ?? []).length;
      rows.push({ name: 'nmap http-headers', seconds: r.seconds, note: `${v}; ${got} responses with X-OWA-Version` });
    }
    const ips = Array.from({ length: HOSTS }, (_, i) => {
      const n = (127 << 24 >>> 0) + (1 << 16) + i;
      return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
    });
    const t0 = process.hrtime.bigint();
    const bare = await bareScan(ips, lab.httpsPort, CONCURRENCY);
    rows.push({ name: 'bare Node TLS+GET', seconds: Number(process.hrtime.bigint() - t0) / 1e9, note: `${bare.answered} answered, ${bare.failed} failed; one GET, nothing parsed or stored` });
  } finally {
    await lab.close();
  }
  const nmap = rows.find((r) => r.name.startsWith('nmap'))?.seconds ?? NaN;
  process.stdout.write(`\n${HOSTS} lab hosts (${CIDR}${HOSTILE ? ', with tarpits and slow-drip hosts' : ''}), lab latency ${latencyMs} ms, concurrency ${CONCURRENCY}, port ${lab.httpsPort}\n`);
  process.stdout.write(`${'run'.padEnd(28)} ${'wall s'.padStart(8)} ${'hosts/s'.padStart(8)} ${'x nmap'.padStart(7)}  notes\n`);
  for (const r of rows) {
    const ratio = Number.isFinite(nmap) && Number.isFinite(r.seconds) ? (r.seconds / nmap).toFixed(2) : '-';
    const rate = Number.isFinite(r.seconds) ? (HOSTS / r.seconds).toFixed(0) : '-';
    process.stdout.write(`${r.name.padEnd(28)} ${Number.isFinite(r.seconds) ? r.seconds.toFixed(2).padStart(8) : '-'.padStart(8)} ${rate.padStart(8)} ${ratio.padStart(7)}  ${r.note}\n`);
  }
}

for (const l of LATENCIES) await round(l);
