/**
 * Where a scan is stored, as the scan service sees it: the ScanStore port (src/scan/ports.ts) plus who runs
 * the scan (liveness: claim, heartbeat, interrupted) and what a storage failure means for the user. The
 * PostgreSQL implementation below wires src/platform/db; a service never imports the database itself.
 */
import type { TocsinConfig } from '../core/config.js';
import type { ScanStore } from '../scan/ports.js';
import { openDatabase, type Database } from '../platform/db/connect.js';
import { createScanStore, latestScanId } from '../platform/db/scan-store.js';
import { claimScan, markScanInterrupted, requestCancel, startHeartbeat, type CancelRequest } from '../platform/db/scan-liveness.js';
import { scanStorageError } from '../platform/db/storage-errors.js';
import { loadExchangeKb } from '../products/exchange/kb/index.js';

export type { CancelRequest };

export interface ScanStorage {
  readonly store: ScanStore;
  /** The most recently created scan, or null when none is stored. */
  latestScanId(): Promise<string | null>;
  /** Makes this process the scan's runner; TOCSIN_SCAN_BUSY while another live process runs it. */
  claim(scanId: string): Promise<void>;
  /**
   * Tells readers the scan is still running, until stop(); calls onCancel (once, with who asked) when
   * another process asked to cancel it (requestCancel).
   */
  startHeartbeat(scanId: string, onCancel?: (by: string) => void): { stop(): void };
  /** Records a request to cancel the scan, for the process running it (it may be another one, on another host). */
  requestCancel(scanId: string, by: string): Promise<CancelRequest>;
  /** Records that this process stopped running the scan before its end (best effort: storage may be what failed). */
  markInterrupted(scanId: string, reason: string): Promise<void>;
  /** Throws the coded error when the storage is known to be gone (checked before each write that matters). */
  assertUsable(): void;
  close(): Promise<void>;
}

/** Where scans are stored, before it is opened: the service opens it (maybe while the first probes run) and closes it. */
export interface ScanStorageProvider {
  open(): Promise<ScanStorage>;
  /** `e` as a coded storage error naming the scan and its resume command, or `e` unchanged (also for a failed open). */
  explainFailure(e: unknown, scanId: string | null): unknown;
}

/**
 * A ScanStorage on an open database. `close()` closes the database when `ownsDatabase` (the default), so
 * a caller that keeps using its database passes false.
 */
export function scanStorageOn(database: Database, o: { readonly ownsDatabase?: boolean } & StorageTuning = {}): ScanStorage {
  const store = createScanStore(database.db, { kbRevision: loadExchangeKb().version });
  return {
    store,
    latestScanId: () => latestScanId(database.db),
    claim: (scanId) => claimScan(database.db, scanId),
    startHeartbeat: (scanId, onCancel) => startHeartbeat(database.db, scanId, {
      ...(o.heartbeatMs === undefined ? {} : { intervalMs: o.heartbeatMs }),
      ...(onCancel === undefined ? {} : { onCancel }),
    }),
    requestCancel: (scanId, by) => requestCancel(database.db, scanId, by),
    markInterrupted: async (scanId, reason) => {
      await markScanInterrupted(database.db, scanId, reason);
    },
    assertUsable: () => database.assertUsable(),
    close: async () => {
      if (o.ownsDatabase !== false) await database.close();
    },
  };
}

/** How the storage behaves at run time (tests beat faster; production keeps the defaults). */
export interface StorageTuning {
  /** Heartbeat interval (default 5 s): also how soon a cancel from another process is seen. */
  readonly heartbeatMs?: number;
}

/** The configured database (embedded under TOCSIN_HOME, or TOCSIN_DATABASE_URL), opened on demand. */
export function configuredScanStorage(config: Pick<TocsinConfig, 'home' | 'databaseUrl'>, tuning: StorageTuning = {}): ScanStorageProvider {
  const embeddedHome = config.databaseUrl === null ? config.home : null;
  return {
    open: async () => scanStorageOn(await openDatabase(config), tuning),
    explainFailure: (e, scanId) => scanStorageError(e, { scanId, embeddedHome }),
  };
}
