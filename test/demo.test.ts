/**
 * The quick start's main job, end to end as a user runs it: `tocsin demo --once` in a fresh TOCSIN_HOME
 * (so the embedded PostgreSQL is initialised from nothing), against a small lab.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

test('tocsin demo --once scans the lab, stores it, prints the picture and matches the ground truth', { timeout: 180_000 }, () => {
  const home = mkdtempSync(join(tmpdir(), 'tocsin-demo-'));
  // The embedded server runs as an unprivileged user when we are root: it must reach the data directory.
  chmodSync(home, 0o755);
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, TOCSIN_HOME: home };
    delete env.TOCSIN_DATABASE_URL;
    delete env.DATABASE_URL;
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/bin/tocsin.ts'), 'demo', '--once', '--hosts', '96', '--seed', '5', '--no-progress'], {
      cwd: root,
      env,
      encoding: 'utf8',
      timeout: 170_000,
    });
    assert.equal(r.status, 0, `exit ${String(r.status)}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    assert.match(r.stdout, /Exchange servers\s+\d+/);
    assert.match(r.stdout, /CVE-2021-26855\s+ProxyLogon\s+\d+/);
    assert.match(r.stdout, /Patched share\s+\d/);
    const m = /Ground truth: (\d+) of (\d+) answering hosts read right/.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.equal(m[1], m[2], r.stdout);
    assert.ok(Number(m[2]) > 50, 'most of the 96 hosts answer');
    // The records file is written under TOCSIN_HOME/demo.
    assert.equal(readdirSync(join(home, 'demo')).filter((f) => f.endsWith('.jsonl')).length, 1);
  } finally {
    spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/bin/tocsin.ts'), 'db', 'stop'], { cwd: root, env: { ...process.env, TOCSIN_HOME: home }, encoding: 'utf8' });
    rmSync(home, { recursive: true, force: true });
  }
});
