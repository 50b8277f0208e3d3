/**
 * `tocsin lab`: serve the simulated Exchange estate on 127.0.0.0/8 until SIGINT/SIGTERM.
 * stderr: where it listens and the estate summary; stdout: one JSON line with the ports (for scripts).
 */
import type { Command } from 'commander';
import { TocsinError } from '../core/errors.js';
import { untilStopSignal, type CliContext } from './context.js';
import { parseIntFlag } from './args.js';
import { summarizeEstate } from '../../lab/estate.js';
import { startLab, type Lab, type LabOptions } from '../../lab/server.js';
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
    .action(async (opts: LabCliOptions) => {
      const explicit = opts.httpsPort !== undefined || opts.httpPort !== undefined;
      const options: LabOptions = {
        hosts: parseIntFlag('--hosts', opts.hosts, 1, 65_536),
        base: opts.base,
        seed: parseIntFlag('--seed', opts.seed, 0, 0xffffffff),
        httpsPort: opts.httpsPort === undefined ? 0 : parseIntFlag('--https-port', opts.httpsPort, 0, 65_535),
        httpPort: opts.httpPort === undefined ? 0 : parseIntFlag('--http-port', opts.httpPort, 0, 65_535),
        latencyMs: parseIntFlag('--latency-ms', opts.latencyMs, 0, 60_000),
        ...(opts.truth === undefined ? {} : { truthPath: opts.truth }),
      };
      const lab = await start(options, explicit, parseIntFlag('--workers', opts.workers, 1, 64));
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
