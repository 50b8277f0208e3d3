/**
 * Benchmark: distributed scans with 1, 2 and 4 `tocsin worker` processes on one lab estate (see
 * bench/README.md). Loopback only: the lab serves BASE/N on 127.0.0.0/8.
 *
 *   node --import tsx bench/workers.ts [--hosts 4096] [--latency-ms 0] [--workers 1,2,4] [--block-size 256]
 *       [--base 127.90.0.0] [--database-url URL] [--home DIR] [--compiled]
 *
 * The issue's figure is 65,536 hosts with 100 ms lab-side latency (`--hosts 65536 --latency-ms 100`); the
 * defaults are smaller so a run takes minutes. Per worker count: a fresh scan of the whole estate with
 * `tocsin scan --distributed --detach`, then N worker processes with `--once` started together (through tsx;
 * with --compiled the CLI from `dist/`, after `npm run build`: less start-up CPU); wall time from the first
 * worker's start to the last one's exit. Prints hosts/s, the scaling ratio against one worker, CPU per host
 * (user+sys of the worker processes as GNU time reports them, when /usr/bin/time exists), and checks that every
 * host is stored exactly once. Not a test: exits non-zero only when that check fails.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ALL_EXCHANGE_MIX } from '../lab/estate-model.js';
import { spawnLab } from '../lab/spawn.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const HOSTS = Number(arg('--hosts') ?? 4096);
const LATENCY = Number(arg('--latency-ms') ?? 0);
const COUNTS = (arg('--workers') ?? '1,2,4').split(',').map(Number);
const BLOCK = Number(arg('--block-size') ?? 256);
const BASE = arg('--base') ?? '127.90.0.0';
const URL_ = arg('--database-url') ?? process.env.TOCSIN_DATABASE_URL;
const HOME = arg('--home') ?? join(root, 'bench', 'out', 'workers-home');
const TIME = '/usr/bin/time';
const compiled = join(root, 'dist', 'src', 'bin', 'tocsin.js');
/** A stale dist/ would run another version: only when asked. */
const COMPILED = process.argv.includes('--compiled');

function cli(args: readonly string[]): { cmd: string; argv: string[] } {
  const entry = COMPILED ? [compiled] : ['--import', 'tsx', join(root, 'src/bin/tocsin.ts')];
  const node = [process.execPath, ...entry, ...args];
  // GNU time reports the child's user+sys CPU on stderr's last line (format below).
  return existsSync(TIME) ? { cmd: TIME, argv: ['-f', 'CPU %U %S', ...node] } : { cmd: node[0] as string, argv: node.slice(1) };
}

function run(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string; cpu: number }> {
  const { cmd, argv } = cli(args);
  return new Promise((res) => {
    const c = spawn(cmd, argv, { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
    c.on('close', (code) => {
      const m = /CPU ([\d.]+) ([\d.]+)\s*$/.exec(err);
      res({ code, stderr: err, cpu: m === null ? NaN : Number(m[1]) + Number(m[2]) });
    });
  });
}

async function main(): Promise<void> {
  if (URL_ === undefined) mkdirSync(HOME, { recursive: true });
  // A short lease: `--once` workers notice the end within two heartbeats (lease/6 each), not 10 s later.
  const env: NodeJS.ProcessEnv = {
    TOCSIN_WORKER_LEASE_SECONDS: '6', ...process.env, TOCSIN_HOME: HOME, ...(URL_ === undefined ? {} : { TOCSIN_DATABASE_URL: URL_ }),
  };
  const lab = await spawnLab({ hosts: HOSTS, base: BASE, seed: 11, latencyMs: LATENCY, mix: ALL_EXCHANGE_MIX });
  console.log(`lab: ${HOSTS} hosts from ${BASE}, latency ${LATENCY} ms, https port ${lab.httpsPort}; blocks of ${BLOCK}; CLI ${COMPILED ? 'dist/' : 'tsx'}`);
  const last = lab.hosts[lab.hosts.length - 1]?.ip ?? BASE;
  let baseline: number | null = null;
  let failed = false;
  try {
    for (const n of COUNTS) {
      const submit = await run(['scan', `${BASE}-${last}`, '--ports', `${lab.httpsPort}/tls`, '--distributed', '--detach', '--block-size', String(BLOCK), '--no-progress'], env);
      const id = /tocsin: scan (\d+) \(distributed/.exec(submit.stderr)?.[1];
      if (submit.code !== 0 || id === undefined) throw new Error(`submit failed (${submit.code}): ${submit.stderr}`);
      const t0 = performance.now();
      const workers = await Promise.all(Array.from({ length: n }, () => run(['worker', '--once', '--poll-ms', '200'], env)));
      const wall = (performance.now() - t0) / 1000;
      const cpu = workers.reduce((s, w) => s + w.cpu, 0);
      const bad = workers.filter((w) => w.code !== 0);
      if (bad.length > 0) throw new Error(`a worker failed: ${bad[0]?.stderr ?? ''}`);
      // Every host exactly once (read back through the same database).
      const lease = URL_ === undefined ? await (await import('../src/platform/db/embedded.js')).acquireEmbedded(HOME) : null;
      const c = new pg.Client({ connectionString: URL_ ?? lease?.url });
      await c.connect();
      const r = await c.query<{ n: number; d: number }>('SELECT count(*)::int AS n, count(DISTINCT (ip, port))::int AS d FROM scan_attempts WHERE scan_id = $1', [id]);
      await c.end();
      await lease?.release();
      const row = r.rows[0] ?? { n: -1, d: -1 };
      const once = row.n === HOSTS && row.d === HOSTS;
      if (!once) failed = true;
      const rate = HOSTS / wall;
      baseline ??= rate;
      console.log(`${n} worker(s): scan ${id}: ${wall.toFixed(1)} s, ${rate.toFixed(0)} hosts/s, scaling ×${(rate / baseline).toFixed(2)} vs 1 worker, ` +
        `CPU ${Number.isNaN(cpu) ? '?' : `${((cpu * 1000) / HOSTS).toFixed(2)} ms`}/host, stored ${row.n} rows for ${HOSTS} hosts (${once ? 'each once' : 'NOT each once'})`);
    }
  } finally {
    await lab.close();
  }
  if (failed) process.exitCode = 1;
}

await main();
