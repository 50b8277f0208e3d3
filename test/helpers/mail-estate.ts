/**
 * A small estate for the delivery-tracking and follow-up tests: organisations imported through the real
 * constituency import, their hosts stored by the real scan store, and a later scan that can show a patched build.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ScanRecord } from '../../src/core/contracts/scan-record.js';
import { csvDocument, DATA_FILE_CSV } from '../../src/core/csv.js';
import type { Database } from '../../src/platform/db/connect.js';
import { createConstituencyStore } from '../../src/platform/db/constituency-store.js';
import { createScanStore } from '../../src/platform/db/scan-store.js';
import type { AttemptResult } from '../../src/scan/ports.js';
import { importConstituency } from '../../src/services/constituency.js';

export const PROXYLOGON = ['CVE-2021-26855', 'CVE-2021-26857', 'CVE-2021-26858', 'CVE-2021-27065'];

export interface EstateOrg {
  readonly name: string;
  readonly network: string;
  readonly contact: string;
  readonly abuse?: string;
  readonly ips: readonly string[];
}

function answered(ip: string, at: string, vulnerable: readonly string[], build: string): AttemptResult {
  const record: ScanRecord = {
    ip, port: 443, hostname: null, tls: true, product: 'ms-exchange', edition: 'Exchange Server 2016', build,
    buildPrecision: 'exact', cu: 'CU19', su: null, vulnerable: [...vulnerable], indeterminate: [], evidence: [], scannedAt: at, status: 200, notes: [],
  };
  return { ip, port: 443, hostname: null, outcome: 'answered', detail: null, record, facts: [], detectorRevisions: {}, tlsCert: null, attemptedAt: at };
}

/** Imports the organisations and stores one finished scan that saw every host vulnerable to ProxyLogon. */
export async function buildEstate(database: Database, orgs: readonly EstateOrg[]): Promise<void> {
  const csv = csvDocument(['organisation', 'sector', 'networks', 'contact', 'abuse_contact'], orgs.map((o) => [o.name, 'health', o.network, o.contact, o.abuse ?? '']), DATA_FILE_CSV);
  const report = await importConstituency(createConstituencyStore(database.db), { files: [{ name: 'orgs.csv', bytes: Buffer.from(csv) }], format: 'auto', who: 'tester' });
  assert.equal(report.files[0]?.imported, orgs.length, JSON.stringify(report.files));
  await scan(database, orgs.flatMap((o) => o.ips).map((ip) => ({ ip, vulnerable: PROXYLOGON })), new Date(Date.now() - 3_600_000));
}

/** A finished scan of these hosts at `at` (a patched host: vulnerable [] and a fixed build). */
export async function scan(database: Database, hosts: readonly { ip: string; vulnerable: readonly string[] }[], at: Date): Promise<void> {
  const scans = createScanStore(database.db, { kbRevision: 'test' });
  const s = await scans.createScan({ targets: ['198.18.0.0/15'], ports: [443], options: {} });
  await scans.recordBatch(s.id, hosts.map((h, i) => answered(h.ip, new Date(at.getTime() + i * 1000).toISOString(), h.vulnerable, h.vulnerable.length > 0 ? '15.1.2176.2' : '15.1.2176.9')));
  await scans.finishScan(s.id, 'finished');
}

/** A Maildir (cur/, new/, tmp/) under `dir` holding these messages in new/. */
export function writeMaildir(dir: string, messages: readonly (string | Buffer)[]): void {
  for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(dir, sub), { recursive: true });
  messages.forEach((m, i) => writeFileSync(join(dir, 'new', `1772445600.M${i}P1.tocsin-test`), m));
}

/** The same messages as an mbox (mboxrd: body lines starting with `From ` quoted). */
export function mboxOf(messages: readonly string[]): string {
  return messages.map((m) => `From MAILER-DAEMON Mon Mar  2 10:00:00 2026\n${m.replace(/^(>*From )/gm, '>$1')}${m.endsWith('\n') ? '' : '\n'}\n`).join('');
}
