/**
 * `tocsin export campaign|incident ID --format misp|stix [--tlp LEVEL] [--output FILE]`: a MISP event or a STIX 2.1
 * bundle of one campaign or incident report (issue 10 §6), on stdout or into FILE. `tocsin campaign export ID` is
 * the same for campaigns. Thin: src/services/exports.ts builds the document.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { openDatabase } from '../platform/db/connect.js';
import { EXPORT_FORMATS, exportCampaign, exportIncident, parseTlp, type ExportFormat } from '../services/exports.js';
import type { CliContext } from './context.js';

export interface ExportFlags {
  readonly format: string;
  readonly output?: string;
  readonly tlp?: string;
}

function shown(s: string): string {
  return JSON.stringify(sanitiseText(s, { max: 40 }));
}

/** Runs one export; shared with `tocsin campaign export`. */
export async function runExport(ctx: CliContext, kind: 'campaign' | 'incident', rawId: string, flags: ExportFlags): Promise<void> {
  const format = EXPORT_FORMATS.find((f): f is ExportFormat => f === flags.format.trim().toLowerCase());
  if (format === undefined) throw new TocsinError('TOCSIN_ARG_INVALID', `--format must be one of ${EXPORT_FORMATS.join(', ')}, got ${shown(flags.format)}`);
  if (!/^\d{1,15}$/.test(rawId.trim())) throw new TocsinError('TOCSIN_ARG_INVALID', `${kind} ids are numbers, got ${shown(rawId)}`);
  const id = Number(rawId.trim());
  const o = flags.tlp === undefined ? {} : { tlp: parseTlp(flags.tlp) };
  const database = await openDatabase(ctx.config());
  let text: string;
  let filename: string;
  try {
    const doc = kind === 'campaign' ? await exportCampaign(database.db, id, format, o) : await exportIncident(database.db, id, format, o);
    text = `${JSON.stringify(doc.document, null, 2)}\n`;
    filename = doc.filename;
  } finally {
    await database.close();
  }
  if (flags.output === undefined || flags.output === '-') {
    ctx.stdout.write(text);
    return;
  }
  try {
    writeFileSync(flags.output, text);
  } catch (e) {
    throw new TocsinError('TOCSIN_OUTPUT_UNWRITABLE', `cannot write ${shown(flags.output)}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  ctx.stderr.write(`tocsin: wrote ${kind} ${id} as ${format} to ${sanitiseText(flags.output, { max: 200 })} (${filename})\n`);
}

export function addExportOptions(c: Command): Command {
  return c
    .requiredOption('--format <format>', 'misp (a MISP event, core format) | stix (a STIX 2.1 bundle)')
    .option('--tlp <level>', 'clear | green | amber | amber+strict | red (campaign default amber; incident default its own)')
    .option('--output <file>', 'write to FILE instead of stdout');
}

export function register(program: Command, ctx: CliContext): void {
  const e = program.command('export').description('export a campaign or an incident report as a MISP event or a STIX 2.1 bundle');
  for (const kind of ['campaign', 'incident'] as const) {
    addExportOptions(e.command(`${kind} <id>`).description(`export ${kind} ID (addresses, CVEs${kind === 'incident' ? ', web-shell paths' : ''} as indicators)`))
      .action(async (id: string, flags: ExportFlags) => runExport(ctx, kind, id, flags));
  }
}
