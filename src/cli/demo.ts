/**
 * `tocsin demo`: the quick start's main job. Starts the lab (a simulated Exchange estate on 127.0.0.0/8,
 * in its own process so its CPU is not the scanner's), scans it with the real engine into the embedded
 * database (or TOCSIN_DATABASE_URL), prints the national picture from the stored results, and checks the
 * scan against the lab's ground truth. With `--once` it exits after the summary; otherwise the lab keeps
 * running so the user can try `tocsin scan` and `tocsin report` themselves.
 *
 * It composes the same services as `tocsin scan` and `tocsin results` (plan, start, list the stored
 * records; src/services/scan-service.ts) and the report `tocsin report` prints: no demo-only paths, so what
 * the demo shows is what a CERT gets.
 */
import type { Command } from 'commander';
import { join } from 'node:path';
import { untilStopSignal, type CliContext } from './context.js';
import { parseIntFlag } from './args.js';
import { runScanOnTerminal } from './scan.js';
import { constituencyStage, warningLoop, type DemoLab } from './demo-loop.js';
import { renderReport } from './report.js';
import type { ScanRecord } from '../core/contracts/scan-record.js';
import { openDatabase, type Database } from '../platform/db/connect.js';
import { ensureDir, homeFsError } from '../platform/paths.js';
import { buildReport } from '../services/report.js';
import { EXCHANGE_ID } from '../products/exchange/index.js';
import { EXIT_UNANSWERED, planScan, scanExitStatus, scanRecords } from '../services/scan-service.js';
import { configuredScanStorage, scanStorageOn, type ScanStorageProvider } from '../services/scan-storage.js';
import { spawnLab } from '../../lab/spawn.js';
import type { LabHost } from '../../lab/estate.js';

interface DemoFlags {
  hosts: string;
  seed: string;
  latencyMs: string;
  once?: boolean;
  progress: boolean;
  loop: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('demo')
    .description('start the embedded database and the lab, scan the lab, store the results and print the national picture')
    .option('--hosts <n>', 'simulated hosts in the lab (1-65536)', '1024')
    .option('--seed <n>', 'lab seed (same seed, same estate)', '1')
    .option('--latency-ms <ms>', 'simulated round-trip delay in the lab', '0')
    .option('--once', 'exit after the summary (otherwise the lab keeps running until Ctrl+C)')
    .option('--no-progress', 'no progress bar')
    .option('--no-loop', 'stop after the picture per organisation and sector (no campaign, patch wave, rescan or burn-down)')
    .action(async (flags: DemoFlags) => {
      process.exitCode = await demoCommand(ctx, flags);
    });
}

/** Compares scan records with the lab's ground truth: how many answering hosts were read exactly right. */
export function compareWithTruth(records: readonly ScanRecord[], hosts: readonly LabHost[]): { checked: number; right: number; wrong: string[] } {
  const byIp = new Map(records.map((r) => [r.ip, r]));
  let checked = 0;
  let right = 0;
  const wrong: string[] = [];
  for (const h of hosts) {
    const r = byIp.get(h.ip);
    if (h.expected.product === null && (r === undefined || r.product !== EXCHANGE_ID)) {
      if (r !== undefined) {
        checked++;
        right++;
      }
      continue;
    }
    checked++;
    const ok =
      r !== undefined &&
      r.product === h.expected.product &&
      (h.expected.product !== EXCHANGE_ID ||
        (r.build === h.expected.build && r.buildPrecision === h.expected.buildPrecision && r.cu === h.expected.cu));
    if (ok) right++;
    else if (wrong.length < 10) wrong.push(`${h.ip} (${h.kind}): expected ${h.expected.product ?? 'not Exchange'} ${h.expected.build ?? ''}, got ${r?.product ?? 'no answer'} ${r?.build ?? ''}`);
  }
  return { checked, right, wrong };
}

/**
 * Runs the rescan on the demo's open database while a few of the pool's connections are kept in use (every 2 s).
 * On 2 cores the scan runs in this thread and keeps its event loop busy for seconds at a time; a connection the
 * pool has to open then (idle ones close after 10 s) can miss the pool's 10 s connect deadline, and the scan stops
 * with TOCSIN_DB_LOST: seen on a loaded 2-core machine with a fresh pool for the rescan (the first scan keeps the
 * scan command's own pool, as before).
 */
async function keepWarm<T>(database: Database, fn: () => Promise<T>): Promise<T> {
  const touch = (): Promise<unknown> => Promise.all([0, 1, 2].map(() => database.pool.query('SELECT pg_sleep(0.02)'))).catch(() => undefined);
  await touch();
  const warm = setInterval(() => void touch(), 2000);
  try {
    return await fn();
  } finally {
    clearInterval(warm);
  }
}

async function demoCommand(ctx: CliContext, flags: DemoFlags): Promise<number> {
  const config = ctx.config();
  const hosts = parseIntFlag('--hosts', flags.hosts, 1, 65_536);
  const seed = parseIntFlag('--seed', flags.seed, 0, 0xffffffff);
  const latencyMs = parseIntFlag('--latency-ms', flags.latencyMs, 0, 60_000);
  const err = ctx.stderr;

  err.write(`demo: starting the lab: ${hosts} simulated hosts on 127.1.0.0 and up (loopback only)…\n`);
  let lab = await spawnLab({ hosts, seed, latencyMs, httpsPort: 0, httpPort: 0 });
  try {
    const first = lab.hosts[0]?.ip ?? lab.base;
    const last = lab.hosts[lab.hosts.length - 1]?.ip ?? lab.base;
    const outDir = join(config.home, 'demo');
    // Not mkdir({ recursive: true }): it spins forever under /proc; an unusable TOCSIN_HOME is a coded error.
    await ensureDir(outDir).catch((e: unknown) => {
      throw homeFsError(e, config.home, 'creating the demo folder');
    });
    const output = join(outDir, `scan-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`);
    err.write(`demo: lab listening: https on port ${lab.httpsPort}, http on port ${lab.httpPort}\n`);
    err.write(`demo: scanning ${first}-${last} (what you would type: tocsin scan ${first}-${last} --ports ${lab.httpsPort}/tls)\n`);

    // What `tocsin scan RANGE --ports PORT/tls --output FILE` plans and runs, with the configured limits.
    const plan = await planScan({
      targets: [`${first}-${last}`],
      ports: `${lab.httpsPort}/tls`,
      excludeFiles: config.excludeFiles,
      exclude: [],
      concurrency: config.concurrency,
      rate: config.rateLimit,
      ratePerNetwork: config.ratePerNetwork,
      userAgent: config.userAgent,
    }, { stdin: process.stdin });
    const result = await runScanOnTerminal(ctx, { plan }, { format: 'jsonl', output, store: true, progress: flags.progress, workers: config.workers });
    const code = scanExitStatus(result);
    // Exit 3 = the scan completed but some connects stayed unanswered after retries (a loaded machine):
    // the report and the ground-truth check still say what was read; the mismatch list shows the gaps.
    if (code !== 0 && code !== EXIT_UNANSWERED) return code;
    err.write(`demo: scanned ${hosts} hosts in ${(result.elapsedMs / 1000).toFixed(1)} s; records in ${output}\n\n`);

    // The picture, the ground-truth check and every later stage read what the scan stored, through one database
    // (one lease on the embedded server), so the server is not stopped and started between the stages.
    const database = await openDatabase(config);
    const sharedStorage = (): ScanStorageProvider => ({ ...configuredScanStorage(config), open: () => Promise.resolve(scanStorageOn(database, { ownsDatabase: false })) });
    const records: ScanRecord[] = [];
    let cmp: ReturnType<typeof compareWithTruth>;
    try {
      ctx.stdout.write(renderReport(await buildReport(database.db, { kind: 'latest' }), 'table'));
      const stored = await scanRecords(scanStorageOn(database, { ownsDatabase: false }), result.scanId);
      for await (const r of stored.records) records.push(r);
      cmp = compareWithTruth(records, lab.hosts);
      ctx.stdout.write(`\nGround truth: ${cmp.right} of ${cmp.checked} answering hosts read right (product, build, precision, CU).\n`);
      for (const w of cmp.wrong) ctx.stdout.write(`  mismatch: ${w}\n`);

      // Issue 8: who owns what was found. Issue 9: warn them, watch them patch.
      await constituencyStage(ctx, database, { base: lab.base, hosts });
      if (flags.loop) {
        const { httpsPort, httpPort } = lab;
        // The wave's files (what was upgraded, the rescan's records) apart from the first scan's records.
        const waveDir = join(outDir, 'patch-wave');
        await ensureDir(waveDir).catch((e: unknown) => {
          throw homeFsError(e, config.home, 'creating the demo folder');
        });
        const demoLab: DemoLab = {
          base: lab.base,
          hosts,
          restartWith: async (wave) => {
            await lab.close();
            // The same ports: findings are per ip:port, so the rescan must reach the same services.
            lab = await spawnLab({ hosts, seed, latencyMs, httpsPort, httpPort, wave });
          },
          rescan: async (ips) => {
            const again = await planScan({
              targets: ips,
              ports: `${httpsPort}/tls`,
              excludeFiles: config.excludeFiles,
              exclude: [],
              concurrency: config.concurrency,
              rate: config.rateLimit,
              ratePerNetwork: config.ratePerNetwork,
              userAgent: config.userAgent,
            }, { stdin: process.stdin });
            const rescanOutput = join(waveDir, `rescan-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`);
            const r = await keepWarm(database, () =>
              runScanOnTerminal(ctx, { plan: again }, { format: 'jsonl', output: rescanOutput, store: true, progress: flags.progress, workers: config.workers, storage: sharedStorage() }));
            err.write(`demo: rescanned ${ips.length} hosts in ${(r.elapsedMs / 1000).toFixed(1)} s; records in ${rescanOutput}\n`);
            return scanExitStatus(r);
          },
        };
        const loopCode = await warningLoop(ctx, database, demoLab, records, waveDir);
        if (loopCode !== 0) return loopCode;
      }
    } finally {
      await database.close();
    }

    if (flags.once === true) return cmp.wrong.length === 0 ? 0 : 1;
    err.write(
      [
        '',
        `demo: the lab keeps running (https port ${lab.httpsPort}, http port ${lab.httpPort}). In another terminal try:`,
        // The first lab address may be a closed or decoy host: suggest one that answered as Exchange.
        `  npx tocsin scan ${records.find((r) => r.product === EXCHANGE_ID)?.ip ?? first} --ports ${lab.httpsPort}/tls --no-store --format table`,
        `  npx tocsin scan ${first}-${last} --ports ${lab.httpsPort}/tls,${lab.httpPort}/http --format csv --output scan.csv`,
        '  npx tocsin report --format table',
        '  npx tocsin report --scans',
        '  npx tocsin report --by org',
        '  npx tocsin whois 127.1.0.70',
        ...(flags.loop ? ['  npx tocsin findings --state closed', '  npx tocsin campaign list', '  npx tocsin stats --by sector'] : []),
        '  npx tocsin kb 15.1.2176.2',
        'demo: press Ctrl+C to stop',
        '',
      ].join('\n'),
    );
    await untilStopSignal();
    return 0;
  } finally {
    await lab.close();
  }
}
