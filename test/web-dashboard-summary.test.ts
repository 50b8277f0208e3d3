/**
 * The dashboard's summary from a cold start (issue 10 §8), both database backends: `warmDashboard` (what
 * `tocsin serve` starts as it listens) fills the cache so later readers get its answer without computing, a reader
 * arriving while it runs shares its computation, and the age limit of an unchanged answer grows with how long the
 * answer took to compute (a slow national picture is not recomputed every 30 s under steady reading).
 */
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { DbSchema } from '../src/platform/db/schema.js';
import { DashboardCache, nationalSummary, patchCurveSvg, warmDashboard } from '../src/services/dashboard.js';
import { testEachBackend } from './helpers/db.js';

async function addOpenFinding(db: Kysely<DbSchema>, ip: string): Promise<void> {
  await sql`
    INSERT INTO findings (ip, port, cve, product, state, verdict, first_seen, last_seen, last_at)
    VALUES (${ip}::inet, 443, 'CVE-2021-26855', 'ms-exchange', 'open', 'vulnerable', now(), now(), now())`.execute(db);
}

testEachBackend('warmDashboard fills the cache; a reader during the warm-up shares it; later readers do not recompute', async ({ database }) => {
  const db = database.db;
  await addOpenFinding(db, '198.51.100.1');
  // The version is checked once an hour here, so an answer computed after the second finding would count it.
  const warmed = new DashboardCache({ checkEveryMs: 3_600_000 });
  await warmDashboard(db, { cache: warmed });
  await addOpenFinding(db, '198.51.100.2');
  assert.equal((await nationalSummary(db, { cache: warmed })).totals.findingsOpen, 1, 'the warm-up\'s answer, not a new computation');
  assert.match(await patchCurveSvg(db, {}, { cache: warmed }), /<svg[\s>]/, 'the chart was warmed too');
  // A cache that was not warmed computes now and sees both findings.
  assert.equal((await nationalSummary(db, { cache: new DashboardCache() })).totals.findingsOpen, 2);

  // A reader arriving while the warm-up runs waits for the same computation.
  const cache = new DashboardCache({ checkEveryMs: 3_600_000 });
  const warming = warmDashboard(db, { cache });
  const early = await nationalSummary(db, { cache });
  await warming;
  assert.equal(early.totals.findingsOpen, 2);
  assert.equal((await nationalSummary(db, { cache })).computedAt, early.computedAt, 'one computation, shared');
});

testEachBackend('an unchanged answer is recomputed after max(maxAgeMs, maxAgeFactor x its computation time)', async ({ database }) => {
  const db = database.db;
  let t = 1_000_000;
  let calls = 0;
  // Each computation "takes" 10 s of the injected clock.
  const compute = async (): Promise<number> => {
    calls++;
    t += 10_000;
    return calls;
  };
  const slow = new DashboardCache({ checkEveryMs: 0, staleMs: 0, maxAgeMs: 30_000, maxAgeFactor: 20, now: () => t });
  assert.equal((await slow.get(db, 'k', compute)).value, 1);
  t += 31_000;
  assert.equal((await slow.get(db, 'k', compute)).value, 1, '31 s old, but it took 10 s: kept until 200 s');
  t += 168_000;
  assert.equal((await slow.get(db, 'k', compute)).value, 1, '199 s old: still kept');
  t += 2_000;
  assert.equal((await slow.get(db, 'k', compute)).value, 2, '201 s old: recomputed');
  assert.equal(calls, 2);

  // Factor 0: the plain 30 s limit.
  let t2 = 0;
  let calls2 = 0;
  const plain = new DashboardCache({ checkEveryMs: 0, staleMs: 0, maxAgeMs: 30_000, maxAgeFactor: 0, now: () => t2 });
  const compute2 = async (): Promise<number> => {
    calls2++;
    t2 += 10_000;
    return calls2;
  };
  await plain.get(db, 'k', compute2);
  t2 += 31_000;
  assert.equal((await plain.get(db, 'k', compute2)).value, 2);
});
