import { openDatabase } from './src/platform/db/connect.js';
import { computeStats } from './src/services/stats.js';
const database = await openDatabase({ home: '/tmp/h10-home', databaseUrl: 'postgres://tocsin:tocsin@127.0.0.1:5432/h10_try' });
for (const by of [null, 'sector'] as const) {
  const t = performance.now();
  const r = await computeStats(database.db, { now: new Date('2026-06-01T00:00:00Z'), by });
  console.log(by, Math.round(performance.now() - t), 'ms', r.series.length, 'points', JSON.stringify(r.timeToPatch[0]));
}
await database.close();
