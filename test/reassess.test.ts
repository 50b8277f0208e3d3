/**
 * Issue 7's "done when": a scan started through the scan SERVICE (no child process) against the lab,
 * interrupted and resumed, then re-assessed with a changed knowledge-base row while the lab is CLOSED (no
 * network traffic is possible) gives the changed verdict; re-assessing again changes nothing. Also: identical
 * responses are stored once, and stored bytes stay under the storage cap.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { startLab } from '../lab/server.js';
import type { ScanRecord } from '../src/core/contracts/scan-record.js';
import { DEFAULT_LIMITS, type NetLimits } from '../src/core/contracts/probe.js';
import { dataPath } from '../src/platform/paths.js';
import { createScanStore } from '../src/platform/db/scan-store.js';
import { MAX_STORED_BODY_BYTES } from '../src/platform/db/raw-responses.js';
import type { ScanPlan } from '../src/scan/plan.js';
import { resumeScan, startScan, type ScanDeps } from '../src/services/scan-service.js';
import { scanStorageOn } from '../src/services/scan-storage.js';
import { reassess, reassessProducts, type HostChange } from '../src/services/reassess.js';
import type { Database } from '../src/platform/db/connect.js';
import { testEachBackend } from './helpers/db.js';

const LIMITS: NetLimits = { ...DEFAULT_LIMITS, connectTimeoutMs: 4000, tlsTimeoutMs: 4000, requestTimeoutMs: 4000, hostBudgetMs: 12_000, userAgent: 'tocsin-test' };
/** No other test uses 127.71.0.0/16. */
const BASE = '127.71.0.0';
const HOSTS = 192;

function deps(database: Database, signal: AbortSignal, onBatch?: () => void): ScanDeps {
  return {
    storage: { open: async () => scanStorageOn(database, { ownsDatabase: false }), explainFailure: (e) => e },
    output: {
      replayStored: false,
      open: async () => ({ write: async () => undefined, close: async () => undefined, release: async () => undefined }),
    },
    signal,
    clock: { now: () => Date.now() },
    events: { progress: () => onBatch?.() },
  };
}

async function count(database: Database, query: ReturnType<typeof sql<{ n: number }>>): Promise<number> {
  return (await query.execute(database.db)).rows[0]?.n ?? -1;
}

async function records(database: Database, scanId: string): Promise<Map<string, ScanRecord>> {
  const out = new Map<string, ScanRecord>();
  for await (const r of createScanStore(database.db).records(scanId)) out.set(`${r.ip}:${r.port}`, r);
  return out;
}

testEachBackend('a scan started and resumed through the service is re-assessed offline with a changed knowledge base', async ({ database }) => {
  const lab = await startLab({ hosts: HOSTS, base: BASE, seed: 11 });
  let scanId: string;
  try {
    const plan: ScanPlan = {
      targets: [`${BASE}-127.71.0.${HOSTS - 1}`],
      ports: [{ port: lab.httpsPort, mode: 'tls' }],
      concurrency: 32, limits: LIMITS, exclusions: [], rate: 0, ratePerNetwork: 0,
    };
    // Interrupted after the first stored batch, then resumed: the raw responses of both runs are kept.
    const stop = new AbortController();
    const first = await startScan(plan, deps(database, stop.signal, () => stop.abort('test interrupt')), { workers: 1 });
    assert.equal(first.status, 'interrupted');
    assert.ok(first.scanId !== null);
    scanId = first.scanId;
    const second = await resumeScan(scanId, deps(database, new AbortController().signal), { workers: 1 });
    assert.equal(second.status, 'finished');
    assert.ok(second.alreadyStored > 0 && second.alreadyStored < HOSTS, `resumed after ${second.alreadyStored} stored attempts`);
  } finally {
    // Closed BEFORE re-assessing: from here on no probe could be answered.
    await lab.close();
  }
  const attempts = await count(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM scan_attempts WHERE scan_id = ${Number(scanId)}`);
  assert.equal(attempts, HOSTS);

  // Stored once per content: every observation has its responses, and far fewer distinct bodies than responses.
  const observations = await count(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM observations`);
  const links = await count(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM observation_responses`);
  const bodies = await count(database, sql<{ n: number }>`SELECT count(DISTINCT body_sha256)::int AS n FROM observation_responses`);
  const blobs = await count(database, sql<{ n: number }>`SELECT count(*)::int AS n FROM raw_responses`);
  const referenced = await count(database, sql<{ n: number }>`
    SELECT count(*)::int AS n FROM (SELECT head_sha256 FROM observation_responses UNION SELECT body_sha256 FROM observation_responses) x`);
  const without = await count(database, sql<{ n: number }>`
    SELECT count(*)::int AS n FROM observations o WHERE NOT EXISTS (SELECT 1 FROM observation_responses r WHERE r.observation_id = o.id)`);
  assert.ok(observations > HOSTS / 2, `${observations} observations`);
  assert.equal(without, 0, 'every observation has its responses');
  assert.equal(blobs, referenced, 'each distinct head or body is stored once, and nothing unreferenced');
  // (Lab logon pages name their host, so those differ; 404 pages, redirects and manifests are shared.)
  assert.ok(bodies * 3 < links * 2, `${bodies} distinct bodies for ${links} responses`);
  const shared = await count(database, sql<{ n: number }>`
    SELECT max(c)::int AS n FROM (SELECT count(DISTINCT observation_id) AS c FROM observation_responses GROUP BY body_sha256) x`);
  assert.ok(shared >= 10, `the most shared body backs ${shared} observations`);
  // The storage cap holds, and a cut is recorded.
  const biggest = await count(database, sql<{ n: number }>`SELECT coalesce(max(size), 0)::int AS n FROM raw_responses`);
  assert.ok(biggest <= MAX_STORED_BODY_BYTES + 64 * 1024, `largest blob ${biggest} bytes`);
  const uncut = await count(database, sql<{ n: number }>`
    SELECT count(*)::int AS n FROM observation_responses WHERE body_bytes > ${MAX_STORED_BODY_BYTES} AND NOT stored_truncated`);
  assert.equal(uncut, 0);

  // Same knowledge base, same detectors: the replay reproduces every stored verdict, so nothing is written.
  const before = await records(database, scanId);
  const same = await reassess({ db: database.db, scanId: Number(scanId) });
  assert.equal(same.observations, observations);
  assert.equal(same.replayed, observations);
  assert.equal(same.changed, 0);
  assert.equal(same.written, 0);
  assert.equal(same.detectorErrors, 0);

  // A host vulnerable to a CVE whose fix row for its CU names a later build: mark its own build as the fix.
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-kb-'));
  try {
    cpSync(dataPath('exchange'), dir, { recursive: true });
    const fixesPath = join(dir, 'cve-fixes.csv');
    const lines = readFileSync(fixesPath, 'utf8').split('\n');
    let target: { key: string; rec: ScanRecord; cve: string; line: number } | null = null;
    for (const [key, rec] of before) {
      if (rec.buildPrecision !== 'exact' || rec.build === null || rec.edition === null || rec.cu === null) continue;
      for (const cve of rec.vulnerable) {
        const i = lines.findIndex((l) => l.startsWith(`${cve},${rec.edition},${rec.cu},`) && l.split(',')[6] === 'confirmed' && l.split(',')[3] !== '');
        if (i >= 0) {
          target = { key, rec, cve, line: i };
          break;
        }
      }
      if (target !== null) break;
    }
    assert.ok(target !== null, 'the lab has an exact-build host vulnerable to a CVE with a confirmed fix in its CU');
    const t = target;
    const cells = (lines[t.line] as string).split(',');
    cells[3] = t.rec.build as string;
    lines[t.line] = cells.join(',');
    writeFileSync(fixesPath, lines.join('\n'));

    const changes: HostChange[] = [];
    const products = reassessProducts({ kbDir: dir });
    const changed = await reassess({ db: database.db, scanId: Number(scanId), products, onChange: (c) => void changes.push(c) });
    assert.notEqual(changed.kbRevision, null);
    // Every observation now carries the new revision's assessment; only hosts of that CU lose that one CVE.
    assert.equal(changed.written, observations);
    assert.ok(changed.changed >= 1);
    const mine = changes.find((c) => `${c.ip}:${c.port}` === t.key);
    assert.ok(mine !== undefined, `${t.key} is reported as changed`);
    assert.deepEqual(mine.vulnerableRemoved, [t.cve]);
    assert.deepEqual(mine.vulnerableAdded, []);
    assert.equal(mine.replayed, true);
    for (const c of changes) {
      assert.deepEqual([c.vulnerableRemoved, c.vulnerableAdded, c.indeterminateAdded, c.indeterminateRemoved], [[t.cve], [], [], []], `${c.ip}`);
      assert.equal(c.after.cu, t.rec.cu);
      assert.deepEqual(c.after, c.before, 'the build is unchanged');
    }
    assert.equal(changed.vulnerableRemoved, changes.length);
    // The scan's stored records (what `tocsin results` prints) show the new verdict.
    const after = await records(database, scanId);
    assert.ok(!(after.get(t.key)?.vulnerable ?? []).includes(t.cve));
    assert.deepEqual(after.get(t.key)?.vulnerable, t.rec.vulnerable.filter((v) => v !== t.cve));

    // Again with the same changed knowledge base: nothing to do.
    const again = await reassess({ db: database.db, scanId: Number(scanId), products });
    assert.deepEqual([again.changed, again.written], [0, 0]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
