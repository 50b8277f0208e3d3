/**
 * `tocsin cancel SCAN_ID [--by NAME]`: cancel a scan that another process runs (another terminal, a job
 * worker, another host sharing the database). Thin: the request goes through the scan service
 * (cancelScan), which stores it; the running process reads it at its next heartbeat, stops as for Ctrl+C
 * (what is stored stays, the scan is interrupted and resumable) and says who cancelled it.
 * Exit 0 when the request is recorded; TOCSIN_SCAN_NOT_FOUND / TOCSIN_SCAN_NOT_RUNNING otherwise.
 */
import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { HEARTBEAT_MS } from '../platform/db/scan-liveness.js';
import { cancelScan, isScanId, type CancelResult } from '../services/scan-service.js';
import { DEFAULT_LEASE_SECONDS } from '../services/distributed-scan.js';
import { configuredScanStorage } from '../services/scan-storage.js';

interface CancelFlags {
  by?: string;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('cancel')
    .description('cancel a running scan from another terminal or host: its process stops it within seconds, keeping what is stored (resumable)')
    .argument('<scan-id>', 'the scan to cancel (see `tocsin report --scans`)')
    .option('--by <name>', 'who cancels, stored with the scan and shown by the scan (default: user@host)')
    .action(async (scanId: string, flags: CancelFlags) => {
      process.exitCode = await cancelCommand(ctx, scanId, flags);
    });
}

/** The local user and host: enough to tell operators apart in the scan's message and the report. */
function defaultBy(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry for the uid (some containers): the host still says where the cancel came from.
  }
  return `${user}@${hostname()}`;
}

export async function cancelCommand(ctx: CliContext, scanId: string, flags: CancelFlags): Promise<number> {
  // Checked before the database is opened (starting the embedded server costs seconds).
  if (!isScanId(scanId)) {
    throw new TocsinError('TOCSIN_SCAN_NOT_FOUND', `no scan with id ${JSON.stringify(sanitiseText(scanId, { max: 40 }))} (scan ids are numbers)`);
  }
  const by = flags.by ?? defaultBy();
  const provider = configuredScanStorage(ctx.config());
  let result: CancelResult;
  try {
    const storage = await provider.open();
    try {
      result = await cancelScan(storage, scanId, { by });
    } finally {
      await storage.close().catch(() => undefined);
    }
  } catch (e) {
    throw e instanceof TocsinError ? e : provider.explainFailure(e, null);
  }
  ctx.stderr.write(`${describe(result)}\n`);
  return 0;
}

export function describe(r: CancelResult): string {
  const id = r.scanId;
  const earlier = r.alreadyRequested ? ` (already requested by ${r.by})` : ` by ${r.by}`;
  if (r.state === 'stopping') {
    // No owning process: a distributed scan, whose workers read the request at their heartbeat (a sixth of the lease).
    const stops = r.runner === null
      ? `the workers running its blocks stop them within about ${Math.ceil(DEFAULT_LEASE_SECONDS / 6)} s`
      : `its process (pid ${r.runner.pid} on ${sanitiseText(r.runner.host, { max: 100 })}) stops it within ${Math.round(HEARTBEAT_MS / 1000)} s`;
    return `tocsin: cancel of scan ${id} requested${earlier}; ${stops}, keeping what is stored; finish it later with: tocsin scan --resume ${id}`;
  }
  return `tocsin: scan ${id} is not running (interrupted): nothing to stop; cancel recorded${earlier}; ` +
    `it stays resumable: tocsin scan --resume ${id}`;
}
