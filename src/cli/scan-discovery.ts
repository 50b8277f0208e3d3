/**
 * `tocsin scan --from-discovery FILE` (issue 11 §3): a port scanner's output (masscan, zmap, nmap) as the first
 * stage; only the ports it saw open are fingerprinted. The addresses are grouped by their set of open ports
 * (src/schedules/discovery.ts) and each group is one scan of exactly those ports, through the normal scan path
 * (exclusions, rate limits, storage, resume). Used by src/cli/scan.ts.
 */
import type { CliContext } from './context.js';
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import type { OutputFormat } from '../scan/output.js';
import type { ScanPlan } from '../scan/plan.js';
import { readDiscovery } from '../services/scheduler.js';

export interface DiscoveryScanOptions {
  readonly args: readonly string[];
  readonly ports: string | undefined;
  readonly resume: string | undefined;
  readonly distributed: boolean;
  readonly output: string | undefined;
  readonly format: OutputFormat;
}

/** Exit status: the first interruption (130/141) stops at once; otherwise the worst of the groups' (0 or 3). */
export async function scanFromDiscovery(
  ctx: CliContext,
  file: string,
  o: DiscoveryScanOptions,
  plan: (targets: readonly string[], ports: string) => Promise<ScanPlan>,
  run: (plan: ScanPlan) => Promise<number>,
): Promise<number> {
  if (o.args.length > 0 || o.ports !== undefined || o.resume !== undefined || o.distributed) {
    throw new TocsinError('TOCSIN_ARG_INVALID', '--from-discovery names the targets and their open ports: give no targets, --ports, --resume or --distributed with it');
  }
  const d = await readDiscovery(file);
  const addresses = d.groups.reduce((n, g) => n + g.ips.length, 0);
  ctx.stderr.write(`tocsin: ${d.format} discovery ${sanitiseText(file, { max: 200 })}: ${d.open} open port(s) on ${addresses} address(es), ` +
    `${d.groups.length} port set(s)${d.problems > 0 ? `; ${d.problems} unreadable line(s) skipped (tocsin feeds import keeps them in quarantine)` : ''}\n`);
  if (d.groups.length === 0) return 0;
  if (d.groups.length > 1 && (o.output !== undefined || o.format !== 'jsonl')) {
    throw new TocsinError('TOCSIN_ARG_INVALID', `the discovery has ${d.groups.length} different sets of open ports, so it runs as ${d.groups.length} scans: use jsonl on stdout (redirect it to a file), not --output or ${o.format}`);
  }
  let worst = 0;
  for (const g of d.groups) {
    ctx.stderr.write(`tocsin: ${g.ips.length} address(es) open on ${g.ports.join(',')}\n`);
    const code = await run(await plan(g.ips, g.ports.join(',')));
    if (code !== 0 && code !== 3) return code;
    worst = Math.max(worst, code);
  }
  return worst;
}
