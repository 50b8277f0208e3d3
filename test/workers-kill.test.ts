/**
 * Issue 11 "done when": four `tocsin worker` processes (the real CLI) run a distributed scan of the lab, one
 * of them is killed with SIGKILL while it holds a block; every lab host is then stored exactly once, the scan
 * finishes, the killed worker's block was taken over after the lease, and the connections per second the lab
 * accepted from all workers together stayed within --rate (the burst and one sampling step of slack: the
 * counting of test/scan-rate-connections.test.ts, "no more connections than tokens issued", on a real clock).
 *
 * Both backends: a server (TOCSIN_DATABASE_URL, a fresh database) and the embedded PostgreSQL shared by the
 * five processes through one TOCSIN_HOME (started by the first, adopted by the others).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startLab, type Lab } from '../lab/server.js';
import { ALL_EXCHANGE_MIX } from '../lab/estate-model.js';
import { backendSkip, freshDatabase, type BackendName } from './helpers/db.js';

const root = new URL('..', import.meta.url).pathname;
const bin = join(root, 'src/bin/tocsin.ts');
const RATE = 60;
const BURST = Math.ceil(RATE * 0.05);
const NETS = 8;
const PER_NET = 20;
// Long enough that a heartbeat delayed by a loaded test machine does not fence a live worker.
const LEASE_SECONDS = 15;

interface Child {
  readonly pid: number;
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly stderr: () => string;
  readonly stdout: () => string;
  kill(sig: NodeJS.Signals): void;
}

function tocsin(args: readonly string[], env: Readonly<Record<string, string>>): Child {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env };
  // The embedded backend: no server URL inherited from the environment.
  if (env.TOCSIN_DATABASE_URL === undefined) delete e.TOCSIN_DATABASE_URL;
  const child = spawn(process.execPath, ['--import', 'tsx', bin, ...args], { cwd: root, env: e, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('close', (code, signal) => res({ code, signal })));
  return { pid: child.pid ?? -1, done, stderr: () => err, stdout: () => out, kill: (s) => void child.kill(s) };
}

async function until<T>(what: string, ms: number, fn: () => Promise<T | null> | T | null): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let lab: Lab;
before(async () => {
  lab = await startLab({ hosts: NETS * 256, base: '127.79.0.0', seed: 3, mix: ALL_EXCHANGE_MIX });
});
after(async () => {
  await lab.close();
});

async function killOneWorker(backend: BackendName): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-workers-kill-'));
  // As root the embedded server runs as `postgres`, which must reach TOCSIN_HOME.
  chmodSync(dir, 0o755);
  const fresh = backend === 'server' ? await freshDatabase('server') : null;
  const env: Record<string, string> = {
    TOCSIN_HOME: join(dir, 'home'),
    TOCSIN_WORKER_LEASE_SECONDS: String(LEASE_SECONDS),
    ...(fresh === null ? {} : { TOCSIN_DATABASE_URL: fresh.url }),
  };
  const children: Child[] = [];
  // Connections the lab accepted, sampled on this process's clock.
  const samples: Array<{ t: number; n: number }> = [];
  const sampler = setInterval(() => samples.push({ t: performance.now(), n: lab.stats().connections }), 50);
  try {
    const targets = Array.from({ length: NETS }, (_, i) => `127.79.${i}.0-127.79.${i}.${PER_NET - 1}`);
    const scan = tocsin(['scan', ...targets, '--ports', `${lab.httpsPort}/tls`, '--distributed', '--block-size', String(PER_NET), '--rate', String(RATE), '--timeout-ms', '8000', '--format', 'jsonl'], env);
    children.push(scan);
    let scanEnded = false;
    void scan.done.then(() => (scanEnded = true));
    const scanId = await until('the scan id', 180_000, () => {
      if (scanEnded && !scan.stderr().includes('(distributed')) throw new Error(`the scan command ended early:\n${scan.stderr()}`);
      return /tocsin: scan (\d+) \(distributed/.exec(scan.stderr())?.[1] ?? null;
    });
    const workers = Array.from({ length: 4 }, () => tocsin(['worker', '--once', '--poll-ms', '200'], env));
    children.push(...workers);
    const url = fresh?.url ?? (await embeddedUrlOf(env.TOCSIN_HOME as string));
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      // Kill a worker that holds a block and has stored part of it.
      const victim = await until('a worker in the middle of a block', 120_000, async () => {
        const r = await client.query<{ leased_by: string; block_no: number; stored: number }>(`
          SELECT b.leased_by, b.block_no, (SELECT count(*)::int FROM scan_attempts a WHERE a.scan_id = b.scan_id AND a.ip >= b.first_ip AND a.ip <= b.last_ip) AS stored
          FROM scan_blocks b WHERE b.scan_id = $1 AND b.state = 'running' ORDER BY stored DESC LIMIT 1`, [scanId]);
        const row = r.rows[0];
        return row !== undefined && row.stored >= 3 && row.stored < PER_NET - 3 ? row : null;
      });
      const pid = Number(victim.leased_by.split(':')[1]);
      const w = workers.find((x) => x.pid === pid);
      assert.ok(w !== undefined, `the block is leased by one of our workers (${victim.leased_by})`);
      w.kill('SIGKILL');
      const killed = await w.done;
      assert.equal(killed.signal, 'SIGKILL');

      const result = await until('the scan to end', 480_000, async () => {
        const r = await Promise.race([scan.done, new Promise<null>((res) => setTimeout(() => res(null), 200))]);
        return r;
      });
      assert.equal(result.code, 0, `scan exit status; stderr:\n${scan.stderr()}`);
      for (const x of workers) if (x !== w) assert.equal((await x.done).code, 0, `a surviving worker exits 0 with --once; stderr:\n${x.stderr()}`);

      const total = NETS * PER_NET;
      const counts = await client.query<{ n: number; distinct_n: number; answered: number; obs: number; obs_distinct: number }>(`
        SELECT count(*)::int AS n, count(DISTINCT (ip, port))::int AS distinct_n, count(*) FILTER (WHERE outcome = 'answered')::int AS answered,
               (SELECT count(*)::int FROM observations WHERE scan_id = $1) AS obs,
               (SELECT count(DISTINCT (ip, port))::int FROM observations WHERE scan_id = $1) AS obs_distinct
        FROM scan_attempts WHERE scan_id = $1`, [scanId]);
      const c = counts.rows[0];
      assert.ok(c !== undefined);
      assert.equal(c.n, total, 'one attempt row per lab host');
      assert.equal(c.distinct_n, total, 'no (scan, ip, port) twice');
      assert.equal(c.answered, total, 'every lab host answered');
      assert.equal(c.obs, c.obs_distinct, 'no observation twice');
      assert.equal(c.obs, total);
      const dup = await client.query(`SELECT ip, port FROM scan_attempts WHERE scan_id = $1 GROUP BY ip, port HAVING count(*) <> 1`, [scanId]);
      assert.equal(dup.rows.length, 0);
      const status = await client.query<{ status: string }>('SELECT status FROM scans WHERE id = $1', [scanId]);
      assert.equal(status.rows[0]?.status, 'finished');
      const block = await client.query<{ state: string; attempts: number }>('SELECT state, attempts FROM scan_blocks WHERE scan_id = $1 AND block_no = $2', [scanId, victim.block_no]);
      assert.equal(block.rows[0]?.state, 'done');
      assert.ok((block.rows[0]?.attempts ?? 0) >= 2, 'the killed worker\'s block was run again by another worker');
      // The records printed by the waiting scan command: every host once.
      const lines = scan.stdout().split('\n').filter((l) => l !== '');
      assert.equal(lines.length, total);
      assert.equal(new Set(lines.map((l) => (JSON.parse(l) as { ip: string }).ip)).size, total);
    } finally {
      await client.end();
    }
    clearInterval(sampler);
    // Rate in sum: between any two samples at least 0.5 s apart, no more connections than tokens issued
    // (rate × time + burst), with 250 ms of slack on each end: the sampler and the lab's accept loop run on a loaded
    // machine and stamp late (one 50 ms step was 103 % once in CI). Per-worker rates (4 workers) would read ~400 %.
    let worst = 0;
    let peak = 0;
    for (let i = 0; i < samples.length; i++) {
      for (let j = i + 1; j < samples.length; j++) {
        const a = samples[i] as { t: number; n: number };
        const b = samples[j] as { t: number; n: number };
        const dt = b.t - a.t;
        if (dt < 500) continue;
        const allowed = (RATE * (dt + 500)) / 1000 + BURST;
        worst = Math.max(worst, (b.n - a.n) / allowed);
        if (dt >= 1000 && dt < 1100) peak = Math.max(peak, ((b.n - a.n) * 1000) / dt);
      }
    }
    assert.ok(worst <= 1, `connections exceeded the rate: ${(worst * 100).toFixed(0)} % of what ${RATE}/s allows`);
    // How near the workers came to the rate (a loaded test machine may keep them below it: not asserted).
    process.stderr.write(`# ${backend}: peak ${peak.toFixed(0)} connections/s over 1 s (--rate ${RATE}), worst window ${(worst * 100).toFixed(0)} % of the allowance\n`);
  } catch (e) {
    // What each process said: the first thing to read when this fails.
    for (const c of children) process.stderr.write(`--- pid ${c.pid}\n${c.stderr().slice(-3000)}\n`);
    writeFileSync(join(tmpdir(), 'tocsin-workers-kill.log'), children.map((c) => `--- pid ${c.pid}\n${c.stderr()}`).join('\n'));
    throw e;
  } finally {
    clearInterval(sampler);
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map((c) => c.done));
    if (fresh === null) {
      // The embedded server stops when its last client goes; a killed client leaves it: stop it here.
      const stop = tocsin(['db', 'stop'], env);
      await stop.done;
    }
    await fresh?.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function embeddedUrlOf(home: string): Promise<string> {
  const { acquireEmbedded } = await import('../src/platform/db/embedded.js');
  const lease = await acquireEmbedded(home);
  leases.push(lease);
  return lease.url;
}
const leases: Array<{ release(): Promise<void> }> = [];
after(async () => {
  for (const l of leases) await l.release();
});

for (const backend of ['server', 'embedded'] as const) {
  const skip = backendSkip(backend);
  test(`four workers, one killed with SIGKILL: every lab host once, the scan finishes, --rate holds in sum [${backend}]`, skip === false ? { timeout: 600_000 } : { skip }, async () => {
    await killOneWorker(backend);
  });
}
