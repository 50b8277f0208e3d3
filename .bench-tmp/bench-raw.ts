import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { sql } from 'kysely';
import { DEFAULT_LIMITS } from '../src/core/contracts/probe.js';
import { openDatabase } from '../src/platform/db/connect.js';
import { freshDatabase, SHARED_TEST_HOME } from '../test/helpers/db.js';
import { startScan } from '../src/services/scan-service.js';
import { scanStorageOn } from '../src/services/scan-storage.js';
import type { ScanPlan } from '../src/scan/plan.js';

const child = spawn('npx', ['tsx', '.bench-tmp/lab-child.ts'], { stdio: ['pipe', 'pipe', 'inherit'] });
const line: string = await new Promise((res) => createInterface({ input: child.stdout! }).once('line', res));
const { httpsPort } = JSON.parse(line) as { httpsPort: number };
const plan: ScanPlan = { targets: ['127.72.0.0-127.72.3.255'], ports: [{ port: httpsPort, mode: 'tls' }], concurrency: 256,
  limits: { ...DEFAULT_LIMITS, userAgent: 'bench' }, exclusions: [], rate: 0, ratePerNetwork: 0 };
for (const mode of ['strip', 'keep', 'strip', 'keep'] as const) {
  const fresh = await freshDatabase('embedded');
  const database = await openDatabase({ home: SHARED_TEST_HOME, databaseUrl: fresh.url });
  const storage = scanStorageOn(database, { ownsDatabase: false });
  const store = mode === 'keep' ? storage.store : { ...storage.store, recordBatch: (id: string, b: readonly any[]) => storage.store.recordBatch(id, b.map(({ responses, ...r }) => r)) };
  const c0 = process.cpuUsage(); const t0 = Date.now();
  const r = await startScan(plan, {
    storage: { open: async () => ({ ...storage, store }), explainFailure: (e) => e },
    output: { replayStored: false, open: async () => ({ write: async () => undefined, close: async () => undefined, release: async () => undefined }) },
    signal: new AbortController().signal, clock: { now: () => Date.now() },
  }, { workers: 1 });
  const c = process.cpuUsage(c0); const wall = Date.now() - t0;
  const q = async (s: ReturnType<typeof sql<{ n: number }>>) => (await s.execute(database.db)).rows[0]?.n;
  const obs = await q(sql`SELECT count(*)::int AS n FROM observations`);
  const raw = await q(sql`SELECT count(*)::int AS n FROM raw_responses`);
  const links = await q(sql`SELECT count(*)::int AS n FROM observation_responses`);
  const bodies = await q(sql`SELECT count(DISTINCT body_sha256)::int AS n FROM observation_responses`);
  const rawBytes = await q(sql`SELECT coalesce(sum(octet_length(data)),0)::int AS n FROM raw_responses`);
  const rawUncompressed = await q(sql`SELECT coalesce(sum(size),0)::int AS n FROM raw_responses`);
  const rawRel = await q(sql`SELECT (pg_total_relation_size('raw_responses') + pg_total_relation_size('observation_responses'))::int AS n`);
  const obsRel = await q(sql`SELECT (pg_total_relation_size('observations') + pg_total_relation_size('assessments'))::int AS n`);
  console.log(JSON.stringify({ mode, attempted: r.stats.attempted, answered: r.stats.answered, wallMs: wall, cpuMsPerHost: +(((c.user + c.system) / 1000) / r.stats.attempted).toFixed(3),
    obs, raw, links, bodies, rawBytes, rawUncompressed, rawBytesPerHost: +(rawBytes! / 1024).toFixed(0), rawTablesBytesPerHost: +(rawRel! / 1024).toFixed(0), obsTablesBytesPerHost: +(obsRel! / 1024).toFixed(0) }));
  await database.close(); await fresh.drop();
}
child.stdin!.end();
process.exit(0);
