/**
 * `tocsin kb BUILD [--json] [--precision exact|cu]`: what the knowledge base says about one build.
 * `tocsin kb --verify`: validate the data files and print counts.
 * `tocsin kb --groups [--json]`: the CVE groups (data/exchange/cve-groups.csv), headline ones first.
 */
import type { Command } from 'commander';
import { TocsinError } from '../core/errors.js';
import { tryParseBuildNumber } from '../core/build-number.js';
import { loadExchangeKb, type BuildAssessment, type ExchangeKb, type Verdict } from '../products/exchange/kb/index.js';
import type { CliContext } from './context.js';
import type { CveGroups } from '../products/sdk.js';

interface KbOptions {
  readonly json?: boolean;
  readonly precision?: string;
  readonly verify?: boolean;
  readonly groups?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('kb')
    .description('show edition, CU, SU, release date and the verdict for every CVE for an Exchange build; --verify checks the data')
    .argument('[build]', 'Exchange build, e.g. 15.1.2176.9 or 15.01.2176.009 (15.1.2176 with --precision cu)')
    .option('--json', 'print the assessment as JSON')
    .option('--precision <level>', 'exact (build includes the security update) or cu (only the CU is known)', 'exact')
    .option('--verify', 'validate the knowledge-base files and print counts')
    .option('--groups', 'list the CVE groups (headline ones first: they define the report\'s "patched")')
    .action((build: string | undefined, opts: KbOptions) => {
      const kb = loadExchangeKb(); // throws TOCSIN_KB_DATA_INVALID with every problem listed
      if (opts.groups === true) {
        const groups = kb.groups ?? { groups: [], headline: [] };
        ctx.stdout.write(opts.json === true ? `${JSON.stringify(groups.groups, null, 2)}\n` : formatGroups(groups));
        return;
      }
      if (opts.verify === true) {
        ctx.stdout.write(opts.json === true ? `${JSON.stringify(verifySummary(kb))}\n` : formatVerify(kb));
        return;
      }
      if (build === undefined) throw new TocsinError('TOCSIN_ARG_INVALID', 'give a build number (e.g. `tocsin kb 15.1.2176.9`) or --verify');
      const precision = opts.precision;
      if (precision !== 'exact' && precision !== 'cu') throw new TocsinError('TOCSIN_ARG_INVALID', `--precision must be exact or cu, not ${JSON.stringify(precision)}`);
      if (tryParseBuildNumber(build) === null) {
        throw new TocsinError('TOCSIN_KB_UNKNOWN_BUILD', `not an Exchange build number: ${JSON.stringify(build.slice(0, 40))}`);
      }
      const a = kb.assess(build, precision);
      if (!a.known) {
        // A build the tables do not know has no verdicts worth printing: say so and fail, so that a script
        // (`tocsin kb "$BUILD" && ...`) never takes an unknown build for a checked one.
        const shown = JSON.stringify(build.slice(0, 40));
        throw new TocsinError(
          'TOCSIN_KB_UNKNOWN_BUILD',
          a.edition === null
            ? `${shown} is not a build of any Exchange Server version in the knowledge base (data ${kb.version})`
            : `${shown} is not in the knowledge base: an ${a.edition} build in no listed CU (data ${kb.version}; the tables may be out of date)`,
        );
      }
      ctx.stdout.write(opts.json === true ? `${JSON.stringify(a, null, 2)}\n` : formatAssessment(a, kb));
    });
}

export function verifySummary(kb: ExchangeKb): Record<string, unknown> {
  const count = <T>(xs: readonly T[], f: (x: T) => string): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const x of xs) out[f(x)] = (out[f(x)] ?? 0) + 1;
    return out;
  };
  return {
    valid: true,
    version: kb.version,
    builds: kb.builds.length,
    buildsByEdition: count(kb.builds, (b) => b.edition),
    uncertainBuilds: kb.builds.filter((b) => b.uncertain).length,
    cves: kb.cves.length,
    fixRows: kb.fixes.length,
    fixRowsByStatus: count(kb.fixes, (f) => f.status),
    configDependent: kb.cves.filter((c) => c.configDependent !== null).map((c) => c.id),
    groups: kb.groups?.groups.length ?? 0,
    headlineGroups: (kb.groups?.groups ?? []).filter((g) => g.headline).map((g) => g.name),
  };
}

function formatVerify(kb: ExchangeKb): string {
  const s = verifySummary(kb);
  const lines = [
    `knowledge base OK (version ${kb.version})`,
    `builds      ${kb.builds.length} (${Object.entries(s.buildsByEdition as Record<string, number>).map(([k, v]) => `${k.replace('Exchange Server ', '')}: ${v}`).join(', ')}); ${String(s.uncertainBuilds)} marked uncertain`,
    `CVEs        ${kb.cves.length} (configuration-dependent: ${(s.configDependent as string[]).join(', ') || 'none'})`,
    `fix rows    ${kb.fixes.length} (${Object.entries(s.fixRowsByStatus as Record<string, number>).map(([k, v]) => `${k}: ${v}`).join(', ')})`,
    `groups      ${String(s.groups)} (headline: ${(s.headlineGroups as string[]).join(', ') || 'none'})`,
  ];
  return `${lines.join('\n')}\n`;
}

const ORDER: readonly Verdict[] = ['vulnerable', 'indeterminate', 'not-vulnerable'];

/** Plain-text report. Input is a parsed build (digits and dots), so nothing hostile reaches the terminal. */
export function formatAssessment(a: BuildAssessment, kb: ExchangeKb): string {
  const info = new Map(kb.cves.map((c) => [c.id, c]));
  const out: string[] = [
    `build         ${a.input} (${a.precision === 'cu' ? 'CU level only' : 'exact'})${a.known ? '' : ' - NOT IN THE KNOWLEDGE BASE'}`,
    `edition       ${a.edition ?? '-'}`,
    `CU            ${a.cu ?? '-'}`,
    `SU            ${a.su ?? (a.precision === 'cu' ? '(unknown at CU level)' : '-')}`,
    `released      ${a.releaseDate ?? '-'}`,
    `listed build  ${a.listedBuild ?? '-'}`,
  ];
  for (const n of a.notes) out.push(`note          ${n}`);
  for (const v of ORDER) {
    const list = a.verdicts.filter((x) => x.verdict === v);
    out.push('', `${v.toUpperCase()} (${list.length})`);
    for (const x of list) {
      const c = info.get(x.cve);
      const tag = [c?.group, c?.severity].filter((t) => t !== undefined && t !== null && t !== '').join(', ');
      out.push(`  ${x.cve.padEnd(15)} ${tag === '' ? '' : `[${tag}] `}${x.reason}`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** Plain-text list of the CVE groups: data from the repository's own files, nothing hostile. */
export function formatGroups(g: CveGroups): string {
  const width = Math.max(5, ...g.groups.map((x) => x.name.length));
  const out = ['CVE groups (data/exchange/cve-groups.csv); headline groups come first and define the report\'s "patched"', ''];
  for (const x of g.groups) out.push(`${x.name.padEnd(width)}  ${x.headline ? 'headline' : '        '}  ${x.cves.join(' ')}`);
  return `${out.join('\n')}\n`;
}
