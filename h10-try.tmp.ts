import { writeFileSync } from 'node:fs';
import { openDatabase } from './src/platform/db/connect.js';
import { createConstituencyStore } from './src/platform/db/constituency-store.js';
import { createScanStore } from './src/platform/db/scan-store.js';
import type { AttemptResult } from './src/scan/ports.js';
import { foldFindings } from './src/services/findings.js';
import { computeStats, renderStatsChart } from './src/services/stats.js';
import { renderStats } from './src/cli/stats.js';
const DAY = 86400000; const T0 = Date.parse('2026-03-02T09:00:00Z'); const day = (n: number) => new Date(T0 + n * DAY);
const database = await openDatabase({ home: '/tmp/h10-home', databaseUrl: 'postgres://tocsin:tocsin@127.0.0.1:5432/h10_try' });
const c = createConstituencyStore(database.db);
const sectors = ['water', 'energy', 'health <script>&'];
for (let s = 0; s < 3; s++) { await c.addOrg(`Org ${s}`, { sector: sectors[s]! }, 't'); await c.addEntry(`Org ${s}`, { kind: 'network', text: `10.${s}.0.0/16`, cidrs: [`10.${s}.0.0/16`] }, 't'); }
const hosts = Array.from({ length: 300 }, (_, i) => ({ ip: `10.${i % 3}.${Math.floor(i / 256)}.${i % 256}`, patchDay: Math.floor(2 + ((i * 7919) % 40) * (1 + (i % 3))) }));
let seed = 1; const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
for (let d = 0; d <= 40; d += 2) {
  const store = createScanStore(database.db, { kbRevision: 'kb' });
  const res: AttemptResult[] = hosts.map((h) => {
    const at = day(d).toISOString();
    const vuln = d < h.patchDay ? ['CVE-2021-26855'] : [];
    return { ip: h.ip, port: 443, hostname: null, outcome: 'answered', detail: null, facts: [], detectorRevisions: {}, tlsCert: null, attemptedAt: at,
      record: { ip: h.ip, port: 443, hostname: null, tls: true, product: 'ms-exchange', edition: 'Exchange Server 2016', build: '15.1.2176.2', buildPrecision: 'exact', cu: 'CU19', su: null, vulnerable: vuln, indeterminate: [], evidence: [], scannedAt: at, status: 200, notes: [] } };
  });
  const s = await store.createScan({ targets: hosts.map((h) => h.ip), ports: [443], options: {} });
  await store.recordBatch(s.id, res);
  await foldFindings(database.db, { now: day(d) });
  void rnd;
}
const r = await computeStats(database.db, { now: day(45) });
process.stdout.write(renderStats(r, 'table').split('\n').slice(0, 8).join('\n') + '\n' + renderStats(r, 'table').split('\n').slice(-20).join('\n'));
writeFileSync('/tmp/h10/try.png', await renderStatsChart(r, 'png'));
writeFileSync('/tmp/h10/try.svg', await renderStatsChart(r, 'svg'));
const rs = await computeStats(database.db, { now: day(45), by: 'sector' });
writeFileSync('/tmp/h10/try-sector.png', await renderStatsChart(rs, 'png'));
await database.close();
