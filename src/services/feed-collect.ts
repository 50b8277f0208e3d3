/**
 * The Shadowserver collector use case (`tocsin feeds fetch`): list the reports of a date range through the
 * reports API, download each one not fetched before to TOCSIN_HOME/feeds/shadowserver/<date>/<file>, import it
 * through the feed import (src/services/ingest.ts, unchanged: one file, one transaction, the same report stored
 * once), and remember its id (feed_fetches) so a second run downloads nothing.
 *
 * - A download that fails in a way that may pass (HTTP 5xx or 429, a timeout, a cut body, bad JSON, a network
 *   error) is tried again after a backoff (base, 2 x base, ...); after the last attempt it is reported as failed
 *   and not remembered (the next run tries it again), and the other reports proceed.
 * - A refused key or signature stops the run (TOCSIN_FEED_AUTH): every other call would be refused too.
 * - A report the import rejects is remembered all the same (the file stays on disk for `tocsin feeds import`
 *   after a fix): downloading it again would not change it.
 * - The peer's file names are not trusted as paths: a name that is not a plain file name is replaced by
 *   `<date>-<type>-<id>.csv`.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import type { ProductRuntime } from '../products/registry.js';
import { fetchedReportIds, recordFetch } from '../platform/db/feed-fetch-store.js';
import type { DbSchema } from '../platform/db/schema.js';
import type { ApiFailure, ApiResult, Downloaded, ListQuery, ReportEntry } from '../platform/feeds/shadowserver-api.js';
import { importFeeds, type FileResult } from './ingest.js';

export const FEED = 'shadowserver';

/** What the collector needs of the API (ShadowserverClient; a test may pass its own). */
export interface ReportsApi {
  listReports(q: ListQuery): Promise<ApiResult<{ readonly reports: readonly ReportEntry[]; readonly malformed: number }>>;
  downloadReport(id: string, dest: string): Promise<ApiResult<Downloaded>>;
}

export interface CollectOptions {
  readonly db: Kysely<DbSchema>;
  readonly api: ReportsApi;
  /** TOCSIN_HOME: reports go under feeds/shadowserver/<date>/. */
  readonly home: string;
  /** Inclusive `YYYY-MM-DD` range. */
  readonly from: string;
  readonly to: string;
  /** Only these report types (e.g. scan_exchange); null: all. */
  readonly types?: readonly string[] | null;
  /** Report lists (the API's `reports` parameter); null: all the key may see. */
  readonly reports?: readonly string[] | null;
  /** At most this many new reports downloaded in this run. */
  readonly limit?: number | null;
  /** List and say what would be fetched; download and store nothing. */
  readonly dryRun?: boolean;
  /** Attempts per call (default 3). */
  readonly attempts?: number;
  /** First backoff (default 1000 ms), doubled after each failed attempt. */
  readonly backoffMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly products?: readonly ProductRuntime[];
  readonly today?: () => string;
  onReport?(o: ReportOutcome): void | Promise<void>;
}

export interface ReportOutcome {
  readonly id: string;
  readonly type: string;
  readonly date: string;
  /** The stored file name (the peer's, sanitised, or `<date>-<type>-<id>.csv`). */
  readonly file: string;
  readonly path: string | null;
  readonly status: 'imported' | 'duplicate-report' | 'rejected' | 'failed' | 'would-fetch';
  readonly bytes: number;
  readonly attempts: number;
  readonly import: FileResult | null;
  readonly error: { readonly code: string; readonly message: string } | null;
}

export interface CollectResult {
  /** Entries listed (after the type filter). */
  readonly listed: number;
  /** Entries the peer garbled (left out). */
  readonly malformed: number;
  /** Already fetched by an earlier run. */
  readonly known: number;
  /** Left for a later run by --limit. */
  readonly deferred: number;
  readonly outcomes: readonly ReportOutcome[];
}

const SAFE_FILE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;
const REPORT_TYPE = /^[a-z0-9_]{1,64}$/i;

export async function collectShadowserver(o: CollectOptions): Promise<CollectResult> {
  const attempts = Math.max(1, Math.floor(o.attempts ?? 3));
  const backoff = o.backoffMs ?? 1000;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const retrying = async <T>(call: () => Promise<ApiResult<T>>): Promise<{ result: ApiResult<T>; tries: number }> => {
    let tries = 0;
    for (;;) {
      tries++;
      const result = await call();
      if (result.ok || !result.failure.retryable || tries >= attempts) return { result, tries };
      await sleep(backoff * 2 ** (tries - 1));
    }
  };

  const query: ListQuery = { date: o.from === o.to ? o.from : `${o.from}:${o.to}`, ...(o.reports != null && o.reports.length > 0 ? { reports: o.reports } : {}) };
  const listed = await retrying(() => o.api.listReports(query));
  if (!listed.result.ok) throw fetchError(listed.result.failure, listed.tries);
  const types = o.types != null && o.types.length > 0 ? new Set(o.types.map((t) => t.toLowerCase())) : null;
  const entries = listed.result.value.reports
    .filter((e) => types === null || types.has(e.type.toLowerCase()))
    .filter((e) => e.date >= o.from && e.date <= o.to)
    .sort((a, b) => (a.date !== b.date ? (a.date < b.date ? -1 : 1) : a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  // One id listed twice (overlapping report lists) is one report.
  const unique = [...new Map(entries.map((e) => [e.id, e])).values()];
  const known = await fetchedReportIds(o.db, FEED, unique.map((e) => e.id));
  const fresh = unique.filter((e) => !known.has(e.id));
  const limit = o.limit ?? null;
  const todo = limit === null ? fresh : fresh.slice(0, limit);

  const outcomes: ReportOutcome[] = [];
  const emit = async (r: ReportOutcome): Promise<void> => {
    outcomes.push(r);
    await o.onReport?.(r);
  };
  for (const e of todo) {
    const file = SAFE_FILE.test(e.file) && !e.file.startsWith('.') && e.file.toLowerCase().endsWith('.csv') ? e.file : `${e.date}-${REPORT_TYPE.test(e.type) ? e.type : 'unknown'}-${e.id.replace(/[^A-Za-z0-9_-]/g, '_')}.csv`;
    const base = { id: e.id, type: e.type, date: e.date, file, bytes: 0, attempts: 0, import: null, error: null };
    if (o.dryRun === true) {
      await emit({ ...base, path: null, status: 'would-fetch' });
      continue;
    }
    if (!REPORT_TYPE.test(e.type)) {
      await emit({ ...base, path: null, status: 'failed', error: { code: 'TOCSIN_FEED_FETCH', message: `report ${e.id}: not a report type: ${JSON.stringify(sanitiseText(e.type, { max: 70 }))}` } });
      continue;
    }
    const dir = join(o.home, 'feeds', FEED, e.date);
    await mkdir(dir, { recursive: true });
    // Two reports of one day under one name (never seen, but the peer decides): the second gets its id in the name.
    const path = existsSync(join(dir, file)) ? join(dir, `${file.slice(0, -4)}-${e.id.replace(/[^A-Za-z0-9_-]/g, '_')}.csv`) : join(dir, file);
    const got = await retrying(() => o.api.downloadReport(e.id, path));
    if (!got.result.ok) {
      if (got.result.failure.kind === 'auth') throw fetchError(got.result.failure, got.tries);
      await emit({ ...base, path: null, status: 'failed', attempts: got.tries, error: { code: 'TOCSIN_FEED_FETCH', message: failureText(got.result.failure, got.tries) } });
      continue;
    }
    const [imported] = await importFeeds([path], {
      db: o.db, format: 'shadowserver', reportType: e.type.toLowerCase(), source: FEED,
      ...(o.products !== undefined ? { products: o.products } : {}), ...(o.today !== undefined ? { today: o.today } : {}),
    });
    if (imported === undefined) throw new TocsinError('TOCSIN_INTERNAL', `the import of ${path} returned no result`);
    const importId = imported.importId ?? imported.sameAs;
    await recordFetch(o.db, {
      feed: FEED, reportId: e.id, reportType: e.type.toLowerCase(), reportName: e.report, reportDate: e.date, file, path,
      bytes: got.result.value.bytes, sha256: got.result.value.sha256, status: imported.status,
      importId: imported.status === 'rejected' ? null : importId, error: imported.error?.message ?? null,
    });
    await emit({ ...base, path, status: imported.status, bytes: got.result.value.bytes, attempts: got.tries, import: imported, error: imported.error });
  }
  return { listed: unique.length, malformed: listed.result.value.malformed, known: unique.length - fresh.length, deferred: fresh.length - todo.length, outcomes };
}

function failureText(f: ApiFailure, tries: number): string {
  return `${f.message} (${tries} attempt${tries === 1 ? '' : 's'}${f.retryable ? '' : ', not retried'})`;
}

function fetchError(f: ApiFailure, tries: number): TocsinError {
  return f.kind === 'auth' ? new TocsinError('TOCSIN_FEED_AUTH', f.message) : new TocsinError('TOCSIN_FEED_FETCH', failureText(f, tries));
}
