/**
 * Benchmark: distributed scans (issue 11 §6) with 1, 2 and 4 `tocsin worker` processes on one lab estate, against a
 * local `tocsin scan` of the same estate, then a run where one worker is killed with SIGKILL mid-scan (see
 * bench/README.md, "workers.ts"). Loopback only: the lab serves BASE.. on 127.0.0.0/8.
 *
 *   node --import tsx bench/workers.ts [--hosts 65536] [--latency-ms 100] [--workers 1,2,4] [--block-size 256]
 *       [--worker-concurrency 1] [--kill-workers 4] [--no-kill] [--no-baseline] [--lease-seconds 20] [--rate 0]
 *       [--base 127.90.0.0] [--lab-workers 1] [--admin-url URL] [--compiled | --dist DIR] [--keep-db]
 *
 * The defaults are the issue's figure (65,536 all-Exchange lab hosts, 100 ms lab-side latency, 1, 2 and 4 workers,
 * a kill run with 4). `--admin-url` (default TOCSIN_TEST_PG_URL) names a PostgreSQL server on THIS machine (its
 * backends' CPU is read from /proc); the bench creates its own database there and drops it at the end (`--keep-db`
 * keeps it). Per configuration (each a fresh scan of the whole estate in the same database):
 * - baseline: `tocsin scan BASE-LAST --ports P/tls --output /dev/null` (local, default settings, storage on);
 * - N workers: `tocsin scan ... --distributed --detach`, then N `tocsin worker --once` processes started together;
 *   wall time from the first worker's start to the last one's exit;
 * - kill: as N workers, and one worker gets SIGKILL once ~30% of the hosts are stored; the others take its block
 *   over after the lease (TOCSIN_WORKER_LEASE_SECONDS, `--lease-seconds`, 20 s here against 30 s by default).
 * Printed: wall s, hosts/s, CPU s of the scanner processes (user+sys from GNU time, threads included), CPU s of the
 * PostgreSQL backends serving the bench database (/proc/PID/stat of pg_stat_activity's pids, sampled every 500 ms:
 * a lower bound, a backend's last half second before it exits is not seen; background writer/WAL/checkpointer not
 * counted), CPU of the lab process, CPU ms per host of each, the ratio to one worker, and the exactly-once check in
 * SQL: per scan count(*) = count(DISTINCT (ip, port)) = hosts in scan_attempts, and Exchange found/expected from
 * observations. Also the job queue's table (graphile_worker) size and dead rows after each configuration.
 * The CLI runs through tsx (the tree as it is; ~1-2 s of start-up CPU per process) or, with --compiled, from dist/
 * (run `npm run build` first), or with --dist DIR from a private compiled tree. Not a test: exits non-zero only when a check fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { ALL_EXCHANGE_MIX } from '../lab/estate-model.js';
import { spawnLab } from '../lab/spawn.js';
import { benchArgs, opt } from './lib/args.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const HOSTS = Number(opt('hosts') ?? 65_536);
const LATENCY = Number(opt('latency-ms') ?? 100);
const COUNTS = (opt('workers') ?? '1,2,4').split(',').map(Number);
const BLOCK = Number(opt('block-size') ?? 256);
const WORKER_CONCURRENCY = Number(opt('worker-concurrency') ?? 1);
const KILL_WORKERS = benchArgs.includes('--no-kill') ? 0 : Number(opt('kill-workers') ?? Math.max(...COUNTS));
const BASELINE = !benchArgs.includes('--no-baseline');
// 20 s, not the 30 s default: the kill run waits less. Not shorter: a worker fences itself (stops its blocks) after
// 2/3 of the lease without a heartbeat, and on a loaded machine the event loop lags seconds (6 s gave back most blocks).
const LEASE = Number(opt('lease-seconds') ?? 20);
const RATE = Number(opt('rate') ?? 0);
const BASE = opt('base') ?? '127.90.0.0';
const LAB_WORKERS = Number(opt('lab-workers') ?? 1);
const ADMIN = opt('admin-url') ?? process.env.TOCSIN_TEST_PG_URL;
const KEEP_DB = benchArgs.includes('--keep-db');
/**
 * A compiled tree: --compiled is dist/ (`npm run build`), --dist DIR a private one (`npx tsc -p tsconfig.build.json
 * --outDir DIR`): a snapshot that other people's edits in progress cannot break halfway through a long run.
 */
const DIST = opt('dist') ?? (benchArgs.includes('--compiled') ? 'dist' : undefined);
const COMPILED = DIST !== undefined;
const TIME = '/usr/bin/time';
const compiledEntry = join(resolve(root, DIST ?? 'dist'), 'src', 'bin', 'tocsin.js');
const CLK_TCK = 100;
const LOGS = join(root, 'bench', 'out', 'workers-logs', new Date().toISOString().replace(/[:.]/g, '-'));
mkdirSync(LOGS, { recursive: true });
let logNo = 0;

for (const [name, v] of [['hosts', HOSTS], ['block-size', BLOCK], ['worker-concurrency', WORKER_CONCURRENCY], ['lease-seconds', LEASE]] as const) {
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`--${name} must be a positive whole number`);
}
if (COUNTS.some((n) => !Number.isSafeInteger(n) || n < 1)) throw new Error('--workers must be a list of positive whole numbers, e.g. 1,2,4');
if (ADMIN === undefined) throw new Error('give --admin-url postgres://... (or set TOCSIN_TEST_PG_URL): a PostgreSQL server on this machine');

// ---------------------------------------------------------------------------------------------------------
// Processes and their CPU

/** utime+stime of a process in seconds from /proc (null: gone or unreadable). */
function procCpu(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** The pids whose parent is `ppid` (GNU time's child is the node process we may have to kill). */
function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === ppid) out.push(Number(d));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

interface Child {
  readonly proc: ChildProcess;
  readonly done: Promise<{ code: number | null; stderr: string; cpu: number; rssKb: number; killed: boolean }>;
  /** The node process itself (under GNU time: its child). */
  nodePid(): Promise<number>;
}

function cli(args: readonly string[], env: NodeJS.ProcessEnv): Child {
  const entry = COMPILED ? [compiledEntry] : ['--import', 'tsx', join(root, 'src/bin/tocsin.ts')];
  const node = [process.execPath, ...entry, ...args];
  // GNU time reports the child's user+sys CPU (every thread) and peak RSS on stderr's last line, even after SIGKILL.
  const proc = spawn(TIME, ['-f', 'CPU %U %S RSS %M', ...node], { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr?.on('data', (b: Buffer) => {
    // Keep the tail only: a worker logs per block.
    err = (err + b.toString('utf8')).slice(-20_000);
  });
  const done = new Promise<{ code: number | null; stderr: string; cpu: number; rssKb: number; killed: boolean }>((res) => {
    proc.on('close', (code) => {
      // Each process's last lines, for reading after the run (released blocks, heartbeat failures).
      writeFileSync(join(LOGS, `${++logNo}-${args[0] ?? 'cli'}.log`), err);
      const m = /CPU ([\d.]+) ([\d.]+) RSS (\d+)\s*$/.exec(err);
      res({ code, stderr: err, cpu: m === null ? NaN : Number(m[1]) + Number(m[2]), rssKb: m === null ? NaN : Number(m[3]), killed: /terminated by signal 9/.test(err) });
    });
  });
  return {
    proc,
    done,
    nodePid: async () => {
      for (let i = 0; i < 100; i++) {
        const kids = childrenOf(proc.pid ?? -1);
        if (kids[0] !== undefined) return kids[0];
        await sleep(50);
      }
      throw new Error('the worker process did not start');
    },
  };
}

/**
 * A one-off command (warm-up, baseline, submit), run again when it could not connect (exit 69, TOCSIN_DB_CONNECT):
 * on a loaded machine a new backend's start-up can outlast the client's connect timeout. Up to 3 tries.
 */
async function once(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string; cpu: number; rssKb: number; killed: boolean }> {
  for (let i = 1; ; i++) {
    const r = await cli(args, env).done;
    if (r.code !== 69 || !r.stderr.includes('TOCSIN_DB_CONNECT') || i >= 3) return r;
    console.log(`  (${args[0] ?? ''} could not connect to the database, try ${i + 1})`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * CPU of the PostgreSQL backends serving one database: pids from pg_stat_activity every 500 ms, the highest
 * utime+stime seen per pid. `phase()` returns the CPU since the previous call (backends that existed at the
 * previous call count only their growth).
 */
class BackendCpu {
  private seen = new Map<number, number>();
  private atMark = new Map<number, number>();
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  constructor(private readonly client: pg.Client, private readonly dbName: string) {}

  start(): void {
    this.timer = setInterval(() => void this.sample(), 500);
  }

  async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      // The sampler's own backend is in another database (the admin connection): not counted.
      const r = await this.client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [this.dbName]);
      for (const { pid } of r.rows) {
        const c = procCpu(pid);
        if (c !== null && c > (this.seen.get(pid) ?? -1)) this.seen.set(pid, c);
      }
    } finally {
      this.busy = false;
    }
  }

  async phase(): Promise<number> {
    await this.sample();
    let s = 0;
    for (const [pid, c] of this.seen) s += c - (this.atMark.get(pid) ?? 0);
    this.atMark = new Map(this.seen);
    return s;
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Checks in SQL

interface Counts {
  readonly rows: number;
  readonly distinct: number;
  readonly unanswered: number;
  readonly exchange: number;
  readonly obsDuplicates: number;
  /** Attempts per outcome (answered, timeout, ...): why a host was stored but not identified. */
  readonly outcomes: string;
}

async function counts(c: pg.Client, scanId: string): Promise<Counts> {
  const a = await c.query<{ n: number; d: number; u: number }>(
    'SELECT count(*)::int AS n, count(DISTINCT (ip, port))::int AS d, count(*) FILTER (WHERE unanswered)::int AS u FROM scan_attempts WHERE scan_id = $1', [scanId]);
  const o = await c.query<{ x: number; dup: number }>(
    `SELECT count(DISTINCT ip) FILTER (WHERE product = 'ms-exchange')::int AS x, (count(*) - count(DISTINCT (ip, port)))::int AS dup
     FROM observations WHERE scan_id = $1`, [scanId]);
  const out = await c.query<{ outcome: string; n: number }>(
    'SELECT outcome, count(*)::int AS n FROM scan_attempts WHERE scan_id = $1 GROUP BY 1 ORDER BY 2 DESC', [scanId]);
  const ra = a.rows[0] ?? { n: -1, d: -1, u: -1 };
  const ro = o.rows[0] ?? { x: -1, dup: -1 };
  return { rows: ra.n, distinct: ra.d, unanswered: ra.u, exchange: ro.x, obsDuplicates: ro.dup, outcomes: out.rows.map((x) => `${x.outcome} ${x.n}`).join(', ') };
}

async function queueStats(c: pg.Client, scanId: string): Promise<string> {
  const r = await c.query<{ rel: string; live: number; dead: number; bytes: string }>(
    `SELECT s.relname AS rel, s.n_live_tup::int AS live, s.n_dead_tup::int AS dead, pg_total_relation_size(s.relid)::text AS bytes
     FROM pg_stat_user_tables s WHERE s.schemaname = 'graphile_worker' AND s.relname IN ('_private_jobs', '_private_job_queues')
     ORDER BY 1`);
  // Per block of this scan: how often leased, and how long its last lease ran (a block ends with its slowest host).
  const blocks = await c.query<{ n: number; retried: number; p50: number | null; p90: number | null }>(
    `SELECT count(*)::int AS n, count(*) FILTER (WHERE attempts > 1)::int AS retried,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - leased_at))::float8 AS p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - leased_at))::float8 AS p90
     FROM scan_blocks WHERE scan_id = $1`, [scanId]);
  const b = blocks.rows[0] ?? { n: 0, retried: 0, p50: null, p90: null };
  const parts = r.rows.map((x) => `${x.rel} ${x.live} live / ${x.dead} dead rows, ${(Number(x.bytes) / 1024).toFixed(0)} KiB`);
  return `job queue: ${parts.join('; ') || 'no graphile_worker tables'}; ${b.n} blocks (${b.retried} leased more than once), ` +
    `last lease per block median ${fmt(b.p50 ?? NaN)} s, p90 ${fmt(b.p90 ?? NaN)} s`;
}

// ---------------------------------------------------------------------------------------------------------

interface Row {
  readonly label: string;
  readonly wall: number;
  readonly cpuScanner: number;
  readonly cpuPg: number;
  readonly cpuLab: number;
  readonly counts: Counts;
  readonly note: string;
}

function fmt(n: number, d = 1): string {
  return Number.isFinite(n) ? n.toFixed(d) : '?';
}

async function main(): Promise<void> {
  const dbName = `tocsin_bench_workers_${randomBytes(4).toString('hex')}`;
  const dbUrl = new URL(ADMIN as string);
  dbUrl.pathname = `/${dbName}`;
  const url = dbUrl.toString();
  const admin = new pg.Client({ connectionString: ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const load0 = loadavg();
  console.log(`start ${new Date().toISOString()}, load average ${load0.map((x) => x.toFixed(2)).join(' ')}; database ${dbName}; process logs in ${LOGS}`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TOCSIN_DATABASE_URL: url,
    TOCSIN_WORKER_LEASE_SECONDS: String(LEASE),
    TOCSIN_HOME: join(root, 'bench', 'out', 'workers-home'),
  };
  const t00 = performance.now();
  const lab = await spawnLab({ hosts: HOSTS, base: BASE, seed: 11, latencyMs: LATENCY, mix: ALL_EXCHANGE_MIX, workers: LAB_WORKERS, startTimeoutMs: 300_000 });
  const expectedExchange = lab.hosts.filter((h) => h.kind === 'exchange').length;
  const last = lab.hosts[lab.hosts.length - 1]?.ip ?? BASE;
  const target = `${BASE}-${last}`;
  console.log(`lab: ${HOSTS} all-Exchange hosts ${target} (${expectedExchange} Exchange), latency ${LATENCY} ms, https port ${lab.httpsPort}, ` +
    `${LAB_WORKERS} lab process(es), started in ${((performance.now() - t00) / 1000).toFixed(1)} s; blocks of ${BLOCK}, ` +
    `${WORKER_CONCURRENCY} block(s) at once per worker, lease ${LEASE} s, rate ${RATE === 0 ? 'unlimited' : `${RATE}/s`}; CLI ${COMPILED ? compiledEntry : 'tsx'}`);
  const c = new pg.Client({ connectionString: url });
  const pgCpu = new BackendCpu(admin, dbName);
  const rows: Row[] = [];
  let failed = false;
  const scanArgs = [target, '--ports', `${lab.httpsPort}/tls`, '--no-progress', ...(RATE > 0 ? ['--rate', String(RATE)] : [])];

  const check = (label: string, k: Counts): string => {
    const once = k.rows === HOSTS && k.distinct === HOSTS && k.obsDuplicates === 0;
    if (!once) failed = true;
    return `${once ? 'each host once' : 'NOT each host once'}: ${k.rows} rows, ${k.distinct} distinct (ip, port), ${k.rows - k.distinct} duplicates, ` +
      `${k.unanswered} unanswered, ${k.obsDuplicates} duplicate observations; Exchange found ${k.exchange}/${expectedExchange}` +
      `${k.exchange === expectedExchange ? '' : ` (${label}: hosts not identified)`}; outcomes ${k.outcomes}`;
  };

  try {
    pgCpu.start();
    // Untimed, one host: creates the schema (migrations) so the first timed run does not pay for it.
    const warm = await once(['scan', BASE, '--ports', `${lab.httpsPort}/tls`, '--no-progress', '--output', '/dev/null'], env);
    if (!/tocsin: scan \d+/.test(warm.stderr)) throw new Error(`warm-up scan failed (${warm.code}): ${warm.stderr.slice(-2000)}`);
    await c.connect();
    if (BASELINE) {
      const lab0 = procCpu(lab.pid) ?? NaN;
      await pgCpu.phase();
      const t0 = performance.now();
      const r = await once(['scan', ...scanArgs, '--output', '/dev/null'], env);
      const wall = (performance.now() - t0) / 1000;
      const id = /tocsin: scan (\d+)/.exec(r.stderr)?.[1];
      if (id === undefined) throw new Error(`baseline scan failed (${r.code}): ${r.stderr.slice(-2000)}`);
      const k = await counts(c, id);
      const row: Row = { label: 'local tocsin scan', wall, cpuScanner: r.cpu, cpuPg: await pgCpu.phase(), cpuLab: (procCpu(lab.pid) ?? NaN) - lab0, counts: k, note: check('baseline', k) };
      rows.push(row);
      print(row, null);
    }

    const runWorkers = async (n: number, kill: boolean): Promise<Row> => {
      const s = await once(['scan', ...scanArgs, '--distributed', '--detach', '--block-size', String(BLOCK)], env);
      const id = /tocsin: scan (\d+) \(distributed/.exec(s.stderr)?.[1];
      if (s.code !== 0 || id === undefined) throw new Error(`submit failed (${s.code}): ${s.stderr.slice(-2000)}`);
      const lab0 = procCpu(lab.pid) ?? NaN;
      await pgCpu.phase();
      const t0 = performance.now();
      const workerArgs = ['worker', '--once', '--poll-ms', '200', ...(WORKER_CONCURRENCY > 1 ? ['--concurrency', String(WORKER_CONCURRENCY)] : [])];
      const ws = Array.from({ length: n }, () => cli(workerArgs, env));
      let killNote = '';
      const killer = kill ? (async () => {
        // Wait for ~30% of the hosts stored, then SIGKILL the first worker's node process (not GNU time).
        for (;;) {
          const p = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM scan_attempts WHERE scan_id = $1', [id]);
          if ((p.rows[0]?.n ?? 0) >= HOSTS * 0.3) break;
          await sleep(250);
        }
        const victim = ws[0] as Child;
        const pid = await victim.nodePid();
        const w = await c.query<{ id: string }>('SELECT id FROM scan_workers WHERE pid = $1', [pid]);
        const wid = w.rows[0]?.id ?? '?';
        // Killed while it holds a block (between two blocks there is nothing to take over), or after 60 s anyway.
        let held: pg.QueryResult<{ block_no: number }>;
        for (let i = 0; ; i++) {
          held = await c.query<{ block_no: number }>(
            "SELECT block_no FROM scan_blocks WHERE scan_id = $1 AND leased_by = $2 AND state = 'running'", [id, wid]);
          if (held.rows.length > 0 || i >= 300) break;
          await sleep(200);
        }
        const before = (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM scan_attempts WHERE scan_id = $1', [id])).rows[0]?.n ?? 0;
        process.kill(pid, 'SIGKILL');
        const killedAt = (performance.now() - t0) / 1000;
        const blocks = held.rows.map((b) => b.block_no);
        // Until another worker holds (or has finished) every block the victim held: the lease-timeout wait.
        let takenAt = NaN;
        for (;;) {
          if (blocks.length === 0) break;
          const t = await c.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM scan_blocks WHERE scan_id = $1 AND block_no = ANY($2::int[])
               AND (state = 'done' OR (state = 'running' AND leased_by IS DISTINCT FROM $3))`, [id, blocks, wid]);
          if ((t.rows[0]?.n ?? 0) === blocks.length) {
            takenAt = (performance.now() - t0) / 1000;
            break;
          }
          if (performance.now() - t0 > 3_600_000) break;
          await sleep(200);
        }
        killNote = `killed worker pid ${pid} (${wid}) at ${killedAt.toFixed(1)} s with ${before}/${HOSTS} hosts stored, holding block(s) ` +
          `${blocks.join(', ') || 'none'}; taken over ${Number.isNaN(takenAt) ? 'never seen' : `after ${(takenAt - killedAt).toFixed(1)} s`} (lease ${LEASE} s)`;
      })() : Promise.resolve();
      const results = await Promise.all(ws.map((w) => w.done));
      await killer;
      const wall = (performance.now() - t0) / 1000;
      const cpu = results.reduce((x, r) => x + r.cpu, 0);
      const bad = results.filter((r) => r.code !== 0 && !r.killed);
      if (bad.length > 0) throw new Error(`a worker failed (${bad[0]?.code}): ${bad[0]?.stderr.slice(-2000) ?? ''}`);
      const k = await counts(c, id);
      const status = (await c.query<{ status: string }>('SELECT status FROM scans WHERE id = $1', [id])).rows[0]?.status ?? '?';
      const note = `scan ${id} ${status}; ${check(`${n} workers`, k)}; worker peak RSS ${Math.max(...results.map((r) => r.rssKb / 1024)).toFixed(0)} MiB` +
        `${killNote === '' ? '' : `; ${killNote}`}; ${await queueStats(c, id)}`;
      if (status !== 'finished') failed = true;
      return { label: `${n} worker(s)${kill ? ', one killed' : ''}`, wall, cpuScanner: cpu, cpuPg: await pgCpu.phase(), cpuLab: (procCpu(lab.pid) ?? NaN) - lab0, counts: k, note };
    };

    let one: Row | null = null;
    for (const n of COUNTS) {
      const row = await runWorkers(n, false);
      one ??= n === 1 ? row : null;
      rows.push(row);
      print(row, one);
    }
    if (KILL_WORKERS > 0) {
      const row = await runWorkers(KILL_WORKERS, true);
      rows.push(row);
      print(row, one);
    }
  } finally {
    pgCpu.stop();
    await c.end().catch(() => undefined);
    await lab.close();
    if (!KEEP_DB) {
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch((e: unknown) => console.error(`could not drop ${dbName}: ${String(e)}`));
    }
    await admin.end();
  }
  summary(rows);
  const load1 = loadavg();
  console.log(`end ${new Date().toISOString()}, load average ${load1.map((x) => x.toFixed(2)).join(' ')}; total ${((performance.now() - t00) / 1000).toFixed(0)} s`);
  if (failed) process.exitCode = 1;
}

function print(r: Row, one: Row | null): void {
  const rate = HOSTS / r.wall;
  console.log(`${r.label}: ${fmt(r.wall)} s, ${rate.toFixed(0)} hosts/s${one === null ? '' : `, x${(rate / (HOSTS / one.wall)).toFixed(2)} vs 1 worker`}, ` +
    `CPU scanner ${fmt(r.cpuScanner)} s (${fmt((r.cpuScanner * 1000) / HOSTS, 2)} ms/host), PostgreSQL ${fmt(r.cpuPg)} s (${fmt((r.cpuPg * 1000) / HOSTS, 2)} ms/host), ` +
    `lab ${fmt(r.cpuLab)} s (${fmt((r.cpuLab * 1000) / HOSTS, 2)} ms/host)`);
  console.log(`  ${r.note}`);
}

function summary(rows: readonly Row[]): void {
  const one = rows.find((r) => r.label === '1 worker(s)') ?? null;
  const base = rows.find((r) => r.label === 'local tocsin scan') ?? null;
  console.log('');
  console.log('run                       wall s   hosts/s  x 1 worker  scanner CPU ms/host  PG CPU ms/host  lab CPU ms/host  found/expected  duplicates');
  for (const r of rows) {
    const rate = HOSTS / r.wall;
    console.log(`${r.label.padEnd(24)} ${fmt(r.wall).padStart(7)} ${rate.toFixed(0).padStart(9)} ${(one === null ? '-' : (rate / (HOSTS / one.wall)).toFixed(2)).padStart(11)} ` +
      `${fmt((r.cpuScanner * 1000) / HOSTS, 2).padStart(20)} ${fmt((r.cpuPg * 1000) / HOSTS, 2).padStart(15)} ${fmt((r.cpuLab * 1000) / HOSTS, 2).padStart(16)} ` +
      `${`${r.counts.exchange}/${HOSTS}`.padStart(15)} ${String(r.counts.rows - r.counts.distinct).padStart(11)}`);
  }
  if (one !== null && base !== null) {
    const d = ((one.cpuScanner + one.cpuPg - base.cpuScanner - base.cpuPg) * 1000) / HOSTS;
    console.log(`distributed overhead (1 worker vs local scan, scanner + PostgreSQL CPU): ${d.toFixed(2)} ms/host; wall x${(one.wall / base.wall).toFixed(2)}`);
  }
}

await main();
