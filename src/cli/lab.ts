/**
 * `tocsin lab`: serve the simulated Exchange estate on 127.0.0.0/8 until SIGINT/SIGTERM.
 * stderr: where it listens and the estate summary; stdout: one JSON line with the ports (for scripts).
 */
import type { Command } from 'commander';
import { TocsinError } from '../core/errors.js';
import { untilStopSignal, type CliContext } from './context.js';
import { parseIntFlag } from './args.js';
import { LAB_MIXES, summarizeEstate } from '../../lab/estate.js';
import { startLab, writeTruthFile, type Lab, type LabOptions } from '../../lab/server.js';
import { open } from 'node:fs/promises';
import { spawnLab } from '../../lab/spawn.js';

interface LabCliOptions {
  hosts: string;
  base: string;
  seed: string;
  httpsPort?: string;
  httpPort?: string;
  latencyMs: string;
  truth?: string;
  workers: string;
  mix: string;
}

/** What the command needs from an in-process lab or a cluster of lab processes. */
type RunningLab = Omit<Lab, 'stats'>;

/** Binds the given ports, or 443/80 when free and permitted, else ephemeral ports. */
async function start(options: LabOptions, explicitPorts: boolean, workers: number): Promise<RunningLab> {
  const run = (o: LabOptions): Promise<RunningLab> => (workers > 1 ? spawnLab({ ...o, workers }) : startLab(o));
  if (explicitPorts) return run(options);
  try {
    return await run({ ...options, httpsPort: 443, httpPort: 80 });
  } catch (e) {
    if (e instanceof TocsinError && e.code === 'TOCSIN_LAB_START') return run({ ...options, httpsPort: 0, httpPort: 0 });
    throw e;
  }
}

function truthError(path: string, e: unknown): TocsinError {
  const why = (e as NodeJS.ErrnoException | null)?.code ?? (e instanceof Error ? e.message : String(e));
  return new TocsinError('TOCSIN_OUTPUT_UNWRITABLE', `cannot write --truth ${path}: ${why}`, { cause: e });
}

/** Creates (or truncates) the truth file, so a bad path fails here, as a user error, not once the lab listens. */
async function openTruth(path: string): Promise<void> {
  try {
    await (await open(path, 'w')).close();
  } catch (e) {
    throw truthError(path, e);
  }
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('lab')
    .description('serve a simulated Exchange estate (Exchange 2010-SE, decoys, hostile hosts) on 127.0.0.0/8 until interrupted')
    .option('--hosts <n>', 'number of hosts (1-65536)', '256')
    .option('--base <ip>', 'first address (hosts are consecutive, inside 127.0.0.0/8)', '127.1.0.0')
    .option('--seed <n>', 'estate seed (same seed, same estate)', '1')
    .option('--https-port <port>', 'TLS port (default 443 if it can be bound, else ephemeral)')
    .option('--http-port <port>', 'plain HTTP port (default 80 if it can be bound, else ephemeral)')
    .option('--latency-ms <ms>', 'delay each connection and each response (simulated round trip)', '0')
    .option('--truth <file>', 'write the ground truth (one JSON object per host) to this file')
    .option('--workers <n>', 'serve from this many processes (node:cluster sharing the ports)', '1')
    .option('--mix <name>', `kinds of hosts: ${Object.keys(LAB_MIXES).join(' or ')} (every host an Exchange server)`, 'default')
    .action(async (opts: LabCliOptions) => {
      const explicit = opts.httpsPort !== undefined || opts.httpPort !== undefined;
      const mix = Object.hasOwn(LAB_MIXES, opts.mix) ? LAB_MIXES[opts.mix] : undefined;
      if (mix === undefined) {
        throw new TocsinError('TOCSIN_ARG_INVALID', `--mix must be one of ${Object.keys(LAB_MIXES).join(', ')}, got ${JSON.stringify(opts.mix)}`);
      }
      const options: LabOptions = {
        hosts: parseIntFlag('--hosts', opts.hosts, 1, 65_536),
        base: opts.base,
        seed: parseIntFlag('--seed', opts.seed, 0, 0xffffffff),
        httpsPort: opts.httpsPort === undefined ? 0 : parseIntFlag('--https-port', opts.httpsPort, 0, 65_535),
        httpPort: opts.httpPort === undefined ? 0 : parseIntFlag('--http-port', opts.httpPort, 0, 65_535),
        latencyMs: parseIntFlag('--latency-ms', opts.latencyMs, 0, 60_000),
        mix,
      };
      // An unwritable --truth is refused before anything listens (else the lab served on with no truth file).
      if (opts.truth !== undefined) await openTruth(opts.truth);
      const lab = await start(options, explicit, parseIntFlag('--workers', opts.workers, 1, 64));
      if (opts.truth !== undefined) {
        const path = opts.truth;
        await writeTruthFile(path, lab.hosts).catch(async (e: unknown) => {
          await lab.close();
          throw truthError(path, e);
        });
      }
      const last = lab.hosts[lab.hosts.length - 1]?.ip ?? lab.base;
      const s = summarizeEstate(lab.hosts);
      const fmt = (r: Readonly<Record<string, number>>): string =>
        Object.entries(r)
          .sort((a, b) => b[1] - a[1])
          .map(([k, v]) => `${k} ${v}`)
          .join(', ');
      ctx.stderr.write(
        [
          `lab: ${lab.hosts.length} hosts ${lab.base} - ${last} (seed ${lab.seed})`,
          `lab: https on port ${lab.httpsPort}, http on port ${lab.httpPort} (every 127.x.y.z; loopback only)`,
          `lab: kinds: ${fmt(s.kinds)}`,
          `lab: Exchange editions: ${fmt(s.editions)}`,
          `lab: build visible: ${fmt(s.precision)}`,
          `lab: TLS keys and certificates ${lab.certs.generated ? 'made (first start) in' : 'reused from'} ${lab.certs.dir}`,
          ...(opts.truth === undefined ? [] : [`lab: ground truth written to ${opts.truth}`]),
          'lab: press Ctrl+C to stop',
          '',
        ].join('\n'),
      );
      ctx.stdout.write(`${JSON.stringify({ event: 'listening', httpsPort: lab.httpsPort, httpPort: lab.httpPort, base: lab.base, hosts: lab.hosts.length, seed: lab.seed })}\n`);
      await untilStopSignal();
      await lab.close();
      ctx.stderr.write('lab: stopped\n');
    });
}
