/**
 * The demo's later stages (issues 8 §5 and 9 §5), after the lab is scanned: import the demo constituency and print
 * the picture per organisation and sector; then the warning loop: a ProxyLogon campaign sent to the built-in local
 * SMTP sink, a simulated patch wave (the lab restarts with some hosts upgraded and some dark), a rescan, the fold
 * that closes the patched hosts' findings, and the campaign's burn-down.
 *
 * Every stage calls the services the commands call (constituency import, attribution prefixes import, report
 * --by, findings fold, campaign create/approve/send, stats): what the demo shows is what a CERT gets. The lab
 * itself is driven by src/cli/demo.ts (only the demo and lab commands may use the lab), through `DemoLab`.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ScanRecord } from '../core/contracts/scan-record.js';
import { sanitiseText } from '../core/text.js';
import type { Database } from '../platform/db/connect.js';
import { createConstituencyStore } from '../platform/db/constituency-store.js';
import { createSmtpSender, startLocalSink } from '../platform/mail/index.js';
import { importPrefixTable, refreshAttributions } from '../services/attribute.js';
import { approveCampaign, campaignStatus, createCampaign, sendCampaign } from '../services/campaigns.js';
import { importConstituency } from '../services/constituency.js';
import { demoConstituency, demoConstituencyCsv } from '../services/demo-constituency.js';
import { buildGroupReport } from '../services/exposures.js';
import { foldFindings, listFindings, type Finding } from '../services/findings.js';
import { computeStats } from '../services/stats.js';
import { reportSubject } from '../services/report.js';
import { renderContext } from './campaign.js';
import type { CliContext } from './context.js';
import { renderGroupReport } from './report-by.js';
import { renderStats } from './stats.js';

/** The CVE group the demo's campaign warns about. */
export const DEMO_GROUP = 'ProxyLogon';
/** The source name of the demo's registry entries and prefix table. */
export const DEMO_SOURCE = 'demo-lab';

export interface PatchWave {
  readonly upgraded: readonly string[];
  readonly unreachable: readonly string[];
}

/** What the demo's lab offers the loop: a restart with a wave, on the same ports, and a rescan of some hosts. */
export interface DemoLab {
  readonly base: string;
  readonly hosts: number;
  restartWith(wave: PatchWave): Promise<void>;
  /** Scans these addresses on the lab's port (the scan command's path), storing the records. Exit status. */
  rescan(ips: readonly string[]): Promise<number>;
}

const show = (s: string, max = 60): string => sanitiseText(s, { max });

function ipKey(ip: string): number {
  return ip.split('.').reduce((n, p) => n * 256 + Number(p), 0);
}

/**
 * The patch wave, deterministic from the scan: of the Exchange servers with a ProxyLogon verdict (vulnerable or
 * indeterminate), in address order, every second one is upgraded (when its exact build is visible) and every tenth
 * (from the second) goes dark.
 */
/** The Exchange servers with a verdict (vulnerable or indeterminate) for one of `groupCves`, in address order. */
export function exposedServers(records: readonly ScanRecord[], groupCves: readonly string[]): string[] {
  const cves = new Set(groupCves);
  const ips = records.filter((r) => r.product === reportSubject().id && [...r.vulnerable, ...r.indeterminate].some((c) => cves.has(c))).map((r) => r.ip);
  return [...new Set(ips)].sort((a, b) => ipKey(a) - ipKey(b));
}

export function choosePatchWave(records: readonly ScanRecord[], groupCves: readonly string[]): PatchWave {
  const ips = exposedServers(records, groupCves);
  // Only servers whose exact build is visible are upgraded: with only the CU visible, an upgrade to a CU whose
  // fix is a security update stays indeterminate, and indeterminate never closes a finding (rightly).
  const exact = new Set(records.filter((r) => r.buildPrecision === 'exact').map((r) => r.ip));
  return { upgraded: ips.filter((ip, i) => i % 2 === 0 && exact.has(ip)), unreachable: ips.filter((_, i) => i % 10 === 1) };
}

/** Imports the demo constituency and its prefix table, then prints the picture per organisation and sector. */
export async function constituencyStage(ctx: CliContext, database: Database, lab: Pick<DemoLab, 'base' | 'hosts'>): Promise<void> {
  const err = ctx.stderr;
  const c = demoConstituency(lab.base, lab.hosts);
  const report = await importConstituency(createConstituencyStore(database.db), {
    files: [{ name: 'demo-constituency.csv', bytes: new TextEncoder().encode(demoConstituencyCsv(c)) }],
    source: DEMO_SOURCE,
    format: 'csv',
    who: 'tocsin demo',
  });
  const file = report.files[0];
  if (file?.rejected !== null && file?.rejected !== undefined) throw new Error(`the demo constituency was refused: ${file.rejected.error}`);
  if (c.prefixes.length > 0) await importPrefixTable(database.db, c.prefixes, DEMO_SOURCE);
  const refresh = await refreshAttributions(database.db, { who: 'tocsin demo' });
  err.write(
    `\ndemo: imported the demo constituency: ${c.organisations.length} organisations in ${new Set(c.organisations.map((o) => o.sector)).size} sectors ` +
      `(an ISP's /24s with customers' /26s inside, an ASN-only and a domain-only organisation; what you would type: ` +
      `tocsin constituency import orgs.csv && tocsin attribution prefixes import prefixes.txt)\n`,
  );
  err.write(`demo: attribution: ${refresh.attributed} of ${refresh.considered} addresses attributed, ${refresh.unattributed} for review (tocsin attribution review)\n\n`);
  ctx.stdout.write('\n');
  ctx.stdout.write(renderGroupReport(await buildGroupReport(database.db, 'org'), 'table'));
  ctx.stdout.write('\n');
  ctx.stdout.write(renderGroupReport(await buildGroupReport(database.db, 'sector'), 'table'));
}

interface WaveCounts {
  readonly upgradedClosedPatched: number;
  readonly upgradedStillOpen: number;
  readonly unreachableOpen: number;
  readonly unreachableClosed: number;
}

async function waveCounts(database: Database, wave: PatchWave, cves: ReadonlySet<string>): Promise<WaveCounts> {
  const up = new Set(wave.upgraded);
  const dark = new Set(wave.unreachable);
  let upgradedClosedPatched = 0, upgradedStillOpen = 0, unreachableOpen = 0, unreachableClosed = 0;
  for await (const f of listFindings(database.db, { state: 'all' }) as AsyncIterable<Finding>) {
    if (!cves.has(f.cve)) continue;
    if (up.has(f.ip)) {
      if (f.state === 'closed' && f.closeReason === 'patched') upgradedClosedPatched++;
      else if (f.state === 'open') upgradedStillOpen++;
    } else if (dark.has(f.ip)) {
      if (f.state === 'open') unreachableOpen++;
      else unreachableClosed++;
    }
  }
  return { upgradedClosedPatched, upgradedStillOpen, unreachableOpen, unreachableClosed };
}

/**
 * The warning loop. Returns 0, or the rescan's exit status when it failed. Writes the wave to
 * `patch-wave.json` in `outDir` (TOCSIN_HOME/demo/patch-wave/: which hosts were upgraded or went dark) for whoever
 * checks the result.
 */
export async function warningLoop(ctx: CliContext, database: Database, lab: DemoLab, records: readonly ScanRecord[], outDir: string): Promise<number> {
  const started = performance.now();
  const err = ctx.stderr;
  const out = ctx.stdout;
  const group = reportSubject().groups.groups.find((g) => g.name === DEMO_GROUP);
  if (group === undefined) throw new Error(`the knowledge base has no CVE group ${DEMO_GROUP}`);
  const cves = new Set(group.cves);

  // 1. Findings from what was scanned, then the campaign: one message per organisation with ProxyLogon exposure.
  const fold = await foldFindings(database.db, { who: 'tocsin demo' });
  err.write(`\ndemo: findings folded from the scan (${fold.ms} ms; what you would type: tocsin findings --state open)\n`);
  const created = await createCampaign(database.db, { name: 'ProxyLogon warning (demo)', group: DEMO_GROUP, createdBy: 'tocsin demo' });
  await approveCampaign(database.db, created.id, 'tocsin demo');
  err.write(
    `demo: campaign ${created.id}: ${created.queued} organisation(s) to warn about ${DEMO_GROUP}, ${created.suppressed} suppressed, ` +
      `${created.unattributed} unattributed exposure(s) left for review (tocsin campaign create --name NAME --group ${DEMO_GROUP}; campaign approve ${created.id})\n`,
  );

  // 2. Send through the built-in local sink: an SMTP server on 127.0.0.1 that saves each message as an .eml file.
  const sink = await startLocalSink({ home: ctx.config().home });
  const sender = createSmtpSender({ url: sink.url, from: ctx.config().mailFrom ?? 'Tocsin demo <tocsin@localhost.localdomain>' });
  try {
    const rc = await renderContext(ctx);
    const sent = await sendCampaign(database.db, created.id, sender, { ...rc });
    err.write(`demo: sent ${sent.sent} warning(s) to the local sink (${sent.deferred} deferred, ${sent.bounced} bounced, ${sent.uncertain} uncertain); ` +
      `the .eml files are under ${sink.dir} (tocsin campaign send ${created.id} --local-sink)\n`);
  } finally {
    await sender.close();
    await sink.close();
  }
  const status = await campaignStatus(database.db, created.id);
  out.write(`\nCampaign ${created.id} (${DEMO_GROUP}): ${status.records.length} organisation(s)\n`);
  for (const r of status.records) out.write(`  ${show(r.org, 40).padEnd(40)} ${r.state.padEnd(10)} ticket ${r.ticket}  to ${show(r.recipients.join(' '), 60)}\n`);

  // 3. The patch wave: the lab restarts with some servers upgraded and some dark, and is scanned again.
  const wave = choosePatchWave(records, group.cves);
  const exposed = exposedServers(records, group.cves);
  await writeFile(join(outDir, 'patch-wave.json'), `${JSON.stringify({ campaign: created.id, group: DEMO_GROUP, ...wave }, null, 2)}\n`);
  err.write(`\ndemo: patch wave: ${wave.upgraded.length} server(s) upgraded, ${wave.unreachable.length} unreachable (they accept, then stay silent); ` +
    `restarting the lab and scanning the ${exposed.length} exposed server(s) again…\n`);
  await lab.restartWith(wave);
  const code = await lab.rescan(exposed);
  if (code !== 0 && code !== 3) return code;

  // 4. The fold closes what the rescan saw fixed; unreachable hosts are no evidence, so theirs stay open.
  const fold2 = await foldFindings(database.db, { who: 'tocsin demo' });
  const counts = await waveCounts(database, wave, cves);
  err.write(`demo: findings folded again (${fold2.ms} ms)\n`);
  out.write(
    `\nPatch wave: ${counts.upgradedClosedPatched} ${DEMO_GROUP} finding(s) of upgraded servers closed "patched" (${counts.upgradedStillOpen} still open); ` +
      `${counts.unreachableOpen} of unreachable servers still open (unreachable is not fixed)\n\n`,
  );
  out.write(renderStats(await computeStats(database.db, { campaignId: created.id }), 'table'));
  err.write(`demo: the same from the command line: tocsin stats --campaign ${created.id} (add --chart burndown.svg for a chart)\n`);
  err.write(`demo: warning loop done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  return 0;
}
