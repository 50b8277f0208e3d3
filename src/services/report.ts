/**
 * The report use case (`tocsin report`, the demo's summary, later the API): the database adapter counts
 * (src/platform/db/report.ts), the product's policy decides (report-policy.ts). The product is the
 * registered one with a report (today: Exchange); a caller may name another.
 */
import type { Kysely } from 'kysely';
import type { DbSchema } from '../platform/db/schema.js';
import { listScans as listScanRows, queryReportRows, type ReportScope, type ScanSummary } from '../platform/db/report.js';
import { PRODUCTS } from '../products/registry.js';
import type { Product } from '../products/sdk.js';
import { decideReport, reportQuery, type ExchangeReport, type ReportSubject } from './report-policy.js';

export type { ReportScope, ScanSummary } from '../platform/db/report.js';
export type { CveCount, ExchangeReport, GroupStatus } from './report-policy.js';

/** The product the national picture is about: the first registered product. */
function reportProduct(): Product {
  const p = PRODUCTS[0];
  if (p === undefined) throw new Error('no product is registered');
  return p;
}

/** The product's id, policy and CVE groups (reads its groups file once per thread). */
export function reportSubject(product: Product = reportProduct()): ReportSubject {
  return { id: product.id, report: product.report, groups: product.cveGroups() };
}

/**
 * The report for a scope. Throws TOCSIN_SCAN_NOT_FOUND for an unknown `--scan` id; with nothing stored,
 * a report of zeros with an empty scanIds. `now` is injected for tests.
 */
export async function buildReport(
  db: Kysely<DbSchema>,
  scope: ReportScope = { kind: 'latest' },
  subject: ReportSubject = reportSubject(),
  now: () => Date = () => new Date(),
): Promise<ExchangeReport> {
  const rows = await queryReportRows(db, scope, reportQuery(subject));
  return decideReport(rows, subject, now().toISOString());
}

/** Every stored scan, newest first, with its count of the product's servers. */
export async function listScans(db: Kysely<DbSchema>, product: Product = reportProduct()): Promise<ScanSummary[]> {
  return listScanRows(db, product.id);
}
