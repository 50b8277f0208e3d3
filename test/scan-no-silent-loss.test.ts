/**
 * No silent loss (issue 6, finding 3): a listener whose accept queue is full drops SYNs without a word,
 * so the scanner sees connect timeouts from live hosts. The peer here runs in a child process with an
 * accept backlog of 1 and is frozen (SIGSTOP) while the scan starts: every SYN past the queue is
 * dropped, as on a loaded server or load balancer, but deterministically.
 * - engine: connect timeouts are retried after a backoff (on a manual clock), so once the peer is back
 *   every host is found;
 * - CLI: if the peer never comes back, the scan says how many attempts went unanswered, exits 3, stores
 *   them as unanswered (report --scans counts them), and `--resume ID` finds them once the peer is back.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runScan, type ScanTarget } from '../src/scan/engine.js';
import { defaultKit } from '../src/services/default-kit.js';
import { DEFAULT_LIMITS } from '../src/core/contracts/probe.js';
import type { AttemptResult } from '../src/scan/ports.js';
import { spawnClosePeer } from './helpers/close-peer.js';
import { freshDatabase } from './helpers/db.js';
import { ManualClock } from './helpers/manual-clock.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'src', 'bin', 'tocsin.ts');
let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'tocsin-no-loss-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});


const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('engine: SYNs dropped by a full accept queue are retried with backoff; every host is found', async () => {
  const peer = await spawnClosePeer(1);
  try {
    peer.freeze();
    const clock = new ManualClock();
    const targets: ScanTarget[] = Array.from({ length: 40 }, (_, i) => ({ ip: `127.94.20.${i + 1}`, hostname: null }));
    const results: AttemptResult[] = [];
    let finished = false;
    const run = runScan({
      targets,
      ports: [{ port: peer.port, mode: 'http' }],
      concurrency: 64,
      limits: { ...DEFAULT_LIMITS, connectTimeoutMs: 300, tlsTimeoutMs: 300, requestTimeoutMs: 20_000, hostBudgetMs: 60_000 },
      kit: defaultKit(),
      clock,
      maxLoopLagMs: 0,
      onResult: (r) => void results.push(r),
    }).finally(() => {
      finished = true;
    });
    // Until the first tries have timed out and wait for their backoff (bounded: the old engine never waits).
    for (let i = 0; i < 100 && clock.waiting === 0 && !finished; i++) await pause(50);
    peer.thaw();
    // 100 ms of backoff per 20 ms of real time: the retries' real connect deadlines (300 ms) still fit
    // between them on a loaded machine, so the peer has time to drain its queue.
    for (let i = 0; i < 3000 && !finished; i++) {
      void clock.advance(100);
      await pause(20);
    }
    const stats = await run;
    assert.equal(results.length, 40);
    const lost = results.filter((r) => r.outcome !== 'answered').map((r) => `${r.ip} ${r.outcome} ${r.detail ?? ''}`);
    assert.deepEqual(lost, [], 'no host lost to dropped SYNs');
    assert.ok(stats.retried >= 30, `retried ${stats.retried}`);
    assert.equal(stats.unanswered, 0);
  } finally {
    await peer.close();
  }
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function tocsin(args: readonly string[], env: Readonly<Record<string, string>>): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', bin, ...args], {
    cwd: root,
    env: { ...process.env, TOCSIN_HOME: join(dir, 'home'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  return new Promise((res) => child.on('close', (code) => res({ code, stdout, stderr })));
}

interface ScanRow {
  readonly id: string;
  readonly attempts: number;
  readonly answered: number;
  readonly timedOut: number;
  readonly retried: number;
  readonly unanswered: number;
}

test('CLI: attempts still unanswered after retries exit 3, are counted, and --resume finds them', async () => {
  const peer = await spawnClosePeer(1);
  const fresh = await freshDatabase('embedded');
  try {
    const env = { TOCSIN_DATABASE_URL: fresh.url };
    peer.freeze();
    const first = await tocsin(['scan', '127.94.21.1-127.94.21.20', '--ports', `${peer.port}/http`, '--timeout-ms', '300', '--no-progress'], env);
    assert.equal(first.code, 3, first.stderr);
    assert.match(first.stderr, /\d+ timed out, \d+ retried, \d+ unanswered after retries/);
    const id = /try them again with: tocsin scan --resume (\d+)/.exec(first.stderr)?.[1];
    assert.ok(id !== undefined, first.stderr);

    const listed = await tocsin(['report', '--scans', '--format', 'json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    const before = (JSON.parse(listed.stdout) as ScanRow[]).find((s) => s.id === id);
    assert.ok(before !== undefined);
    assert.equal(before.attempts, 20, 'unanswered attempts are stored (and counted), not dropped');
    // Backlog 1: at most two connections sit in the frozen peer's accept queue; the others' SYNs are dropped.
    assert.ok(before.unanswered >= 15, `unanswered ${before.unanswered}`);
    assert.ok(before.retried >= before.unanswered);

    peer.thaw();
    const resumed = await tocsin(['scan', '--resume', id, '--no-progress'], env);
    assert.equal(resumed.code, 0, resumed.stderr);
    const after = (JSON.parse((await tocsin(['report', '--scans', '--format', 'json'], env)).stdout) as ScanRow[]).find((s) => s.id === id);
    assert.ok(after !== undefined);
    assert.equal(after.attempts, 20, 'a resumed attempt replaces its unanswered row');
    assert.equal(after.unanswered, 0);
    assert.ok(after.answered >= before.unanswered, `answered ${after.answered} of ${before.unanswered} that were unanswered`);
  } finally {
    await peer.close();
    await fresh.drop();
  }
});
