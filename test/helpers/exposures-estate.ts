/**
 * The estate shared by the exposures tests (test/exposures.test.ts, test/report-by-org.test.ts), built through the
 * real services: a constituency import (an ISP /24 with a customer /26 inside, an organisation whose name starts
 * with '='), a Shadowserver scan_exchange report through the feed import, and scan observations through the scan
 * store (newer than the report).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ScanRecord } from '../../src/core/contracts/scan-record.js';
import { createConstituencyStore } from '../../src/platform/db/constituency-store.js';
import { createScanStore } from '../../src/platform/db/scan-store.js';
import type { AttemptResult } from '../../src/scan/ports.js';
import { importConstituency } from '../../src/services/constituency.js';
import { exposureFilter, listExposures, type ExposureFlags, type ExposureRecord } from '../../src/services/exposures.js';
import { importFeeds } from '../../src/services/ingest.js';
import { productRuntimes } from '../../src/products/registry.js';
import type { Database } from '../../src/platform/db/connect.js';

const FIX = fileURLToPath(new URL('../fixtures/exposures/', import.meta.url));
const PROXYLOGON = ['CVE-2021-26855', 'CVE-2021-26857', 'CVE-2021-26858', 'CVE-2021-27065'];

function answered(ip: string, port: number, o: { product?: string | null; build?: string | null; vulnerable?: string[]; at: string }): AttemptResult {
  const product = o.product === undefined ? 'ms-exchange' : o.product;
  const build = o.build === undefined ? '15.1.2176.9' : o.build;
  const record: ScanRecord = {
    ip, port, hostname: null, tls: true, product, edition: product === null ? null : 'Exchange Server 2016', build,
    buildPrecision: build === null ? null : 'exact', cu: build === null ? null : 'CU19', su: null, vulnerable: o.vulnerable ?? [], indeterminate: [],
    evidence: [], scannedAt: o.at, status: 200, notes: [],
  };
  return { ip, port, hostname: null, outcome: 'answered', detail: null, record, facts: [], detectorRevisions: {}, tlsCert: null, attemptedAt: o.at };
}

/** The shared estate: registry, one Shadowserver report, one scan (newer than the report). */
export async function buildEstate(database: Database): Promise<void> {
  const db = database.db;
  const store = createConstituencyStore(db);
  const report = await importConstituency(store, { files: [{ name: 'orgs.csv', bytes: readFileSync(join(FIX, 'orgs.csv')) }], format: 'auto', who: 'tester' });
  assert.equal(report.files[0]?.imported, 3, JSON.stringify(report.files));
  const [feed] = await importFeeds([join(FIX, '2024-06-10-scan_exchange-exposures.csv')], { db, products: productRuntimes() });
  assert.equal(feed?.imported, 4, JSON.stringify(feed));
  const scans = createScanStore(db, { kbRevision: 'test' });
  const scan = await scans.createScan({ targets: ['192.0.2.0/24', '198.51.100.0/24'], ports: [443, 80], options: {} });
  await scans.recordBatch(scan.id, [
    // Also in the Shadowserver report (at CU precision, two years older): our exact build is the newer answer.
    answered('192.0.2.70', 443, { vulnerable: ['CVE-2021-26855', 'CVE-2021-34473'], at: '2026-03-02T10:00:00.000Z' }),
    answered('198.51.100.7', 443, { build: '15.1.1531.3', vulnerable: [...PROXYLOGON], at: '2026-03-02T10:00:01.000Z' }),
    // A plain web server: no product, not an exposure.
    answered('198.51.100.8', 80, { product: null, build: null, at: '2026-03-02T10:00:02.000Z' }),
  ]);
  await scans.finishScan(scan.id, 'finished');
}

export async function collect(database: Database, flags: ExposureFlags = {}, page?: number): Promise<ExposureRecord[]> {
  const { records } = await listExposures(database.db, exposureFilter(flags), page === undefined ? {} : { page });
  const out: ExposureRecord[] = [];
  for await (const r of records) out.push(r);
  return out;
}
