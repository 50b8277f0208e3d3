/**
 * At scale, default settings (issue 6, finding 3): 2,048 Exchange servers behind ONE listening socket of
 * the lab (the shape of a load balancer; on a loaded machine its accept queue overflows and SYNs are
 * dropped), scanned by `tocsin scan` as a user runs it, storage on: every host is stored and printed,
 * nothing is left unanswered, exit 0. (The deterministic version of the failure is in
 * scan-no-silent-loss.test.ts; this one checks that the default settings hold on a real estate.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnLab } from '../lab/spawn.js';
import { freshDatabase } from './helpers/db.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'src', 'bin', 'tocsin.ts');
const HOSTS = 2048;
const ALL_EXCHANGE = {
  exchange: 1, iis: 0, nginx: 0, 'owa-phish': 0, 'exchange-online': 0, tarpit: 0, 'slow-drip': 0, garbage: 0, oversized: 0,
  'hostile-headers': 0, closed: 0,
} as const;

function tocsin(args: readonly string[], env: Readonly<Record<string, string>>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', bin, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  return new Promise((res) => child.on('close', (code) => res({ code, stdout, stderr })));
}

test(`${HOSTS} Exchange servers behind one listener, default settings: every host stored`, { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-lab-no-loss-'));
  const lab = await spawnLab({ hosts: HOSTS, base: '127.94.64.0', seed: 5, httpsPort: 0, httpPort: 0, workers: 1, mix: ALL_EXCHANGE });
  const fresh = await freshDatabase('embedded');
  try {
    const env = { TOCSIN_HOME: join(dir, 'home'), TOCSIN_DATABASE_URL: fresh.url };
    const out = join(dir, 'out.jsonl');
    const first = lab.hosts[0]?.ip ?? '';
    const last = lab.hosts[HOSTS - 1]?.ip ?? '';
    const r = await tocsin(['scan', `${first}-${last}`, '--ports', `${lab.httpsPort}/tls`, '--no-progress', '--output', out], env);
    assert.equal(r.code, 0, r.stderr);
    const ips = new Set(readFileSync(out, 'utf8').split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { ip: string }).ip));
    assert.equal(ips.size, HOSTS, `printed ${ips.size} of ${HOSTS}\n${r.stderr}`);
    // --no-progress draws no bar but still ends with the summary line (it used to go nowhere).
    assert.match(r.stderr, new RegExp(`answered ${HOSTS}, Exchange ${HOSTS}`), r.stderr);
    const scans = JSON.parse((await tocsin(['report', '--scans', '--format', 'json'], env)).stdout) as Array<{ answered: number; unanswered: number; exchangeServers: number }>;
    assert.equal(scans[0]?.answered, HOSTS);
    assert.equal(scans[0]?.exchangeServers, HOSTS);
    assert.equal(scans[0]?.unanswered, 0);
  } finally {
    await lab.close();
    await fresh.drop();
    rmSync(dir, { recursive: true, force: true });
  }
});
