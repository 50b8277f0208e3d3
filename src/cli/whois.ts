/**
 * `tocsin whois IP [--asn N] [--hostname NAME] [--san NAME]... [--ptr NAME]... [--format text|json]`: which organisation an address belongs to,
 * by which rule and record, with what confidence, who to warn, and every other candidate with why it lost.
 * Thin: parse → src/services/attribute.ts → print. Registry values and hostnames are hostile text: sanitised.
 */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { TocsinError } from '../core/errors.js';
import { parseIp } from '../core/ip.js';
import { sanitiseText } from '../core/text.js';
import { describeEvidence, type Attribution } from '../attribution/index.js';
import { openDatabase } from '../platform/db/connect.js';
import { whoisAddress, type AddressWhoisAnswer, type WhoisAnswer } from '../services/attribute.js';

export interface WhoisFlags {
  asn?: string;
  hostname?: string;
  san?: string[];
  ptr?: string[];
  format?: string;
}

const many = (v: string, acc: string[] = []): string[] => [...acc, v];

export function register(program: Command, ctx: CliContext): void {
  program
    .command('whois')
    .description('explain which organisation an address belongs to: the rule and record that matched, the confidence, contacts, and the candidates that lost')
    .argument('<ip>', 'an IPv4 or IPv6 address')
    .option('--asn <n>', 'the ASN a feed gave for the address (AS prefix allowed)')
    .option('--hostname <name>', 'the hostname a feed gave for the address')
    .option('--san <name>', 'a name of the address\'s TLS certificate (repeatable; *.example.org allowed)', many)
    .option('--ptr <name>', 'a reverse DNS name of the address (repeatable)', many)
    .option('--format <format>', 'text | json (default text)')
    .action(async (ip: string, flags: WhoisFlags) => {
      process.exitCode = await whoisCommand(ctx, ip, flags);
    });
}

const show = (s: string, max = 120): string => sanitiseText(s, { max });

export async function whoisCommand(ctx: CliContext, ip: string, flags: WhoisFlags): Promise<number> {
  const format = flags.format ?? 'text';
  if (format !== 'text' && format !== 'json') throw new TocsinError('TOCSIN_ARG_INVALID', `--format must be text or json, got ${JSON.stringify(show(format, 20))}`);
  if (parseIp(ip.trim()) === null) throw new TocsinError('TOCSIN_ARG_INVALID', `${JSON.stringify(show(ip, 60))} is not an IPv4 or IPv6 address`);
  let asn: number | null = null;
  if (flags.asn !== undefined) {
    const m = /^(?:AS)?(\d{1,10})$/i.exec(flags.asn.trim());
    asn = m === null ? null : Number(m[1]);
    if (asn === null || asn > 0xffffffff) throw new TocsinError('TOCSIN_ARG_INVALID', `--asn ${JSON.stringify(show(flags.asn, 30))} is not an AS number (0-4294967295)`);
  }
  const database = await openDatabase(ctx.config());
  try {
    // Flags say what the caller knows; whatever they leave out is read from the address's stored observations.
    const answer = await whoisAddress(database.db, {
      ip,
      ...(asn === null ? {} : { asn }),
      ...(flags.hostname === undefined ? {} : { hostname: flags.hostname }),
      ...(flags.san === undefined ? {} : { sans: flags.san }),
      ...(flags.ptr === undefined ? {} : { ptr: flags.ptr }),
    });
    // JSON: the engine's answer, plus the stored answer and its last owner changes (added fields, same object).
    const json = { ...answer.attribution, stored: answer.stored, ownerChanges: answer.changes };
    ctx.stdout.write(format === 'json' ? `${sanitiseText(JSON.stringify(json), { style: 'json' })}\n` : renderWhois(answer));
    return 0;
  } finally {
    await database.close();
  }
}

const pct = (c: number): string => c.toFixed(2);

/** The explanation, one fact per line (sanitised). */
export function renderWhois(answer: WhoisAnswer | AddressWhoisAnswer): string {
  const a: Attribution = answer.attribution;
  const lines: string[] = [];
  lines.push(`address      ${show(a.ip)}`);
  if (a.orgId === null) {
    lines.push(`organisation none (unattributed: no override, network, ASN or domain of the registry matches)`);
  } else {
    lines.push(`organisation ${show(a.orgName ?? `#${a.orgId}`)} (id ${a.orgId})`);
    lines.push(`rule         ${a.rule ?? ''}, confidence ${pct(a.confidence)}${a.tie ? ' (a tie: review it)' : ''}`);
    if (a.evidence !== null) lines.push(`matched      ${show(describeEvidence(a.evidence), 200)}${a.evidence.rule === 'network' && a.evidence.source !== null ? `, source ${show(a.evidence.source, 40)}` : ''}`);
    if (a.contacts.length === 0) lines.push('contacts     none known');
    for (const [i, c] of a.contacts.entries()) {
      const via = c.source === 'organisation' ? `${c.role} contact` : `abuse-mailbox of network ${show(c.network ?? '?')}`;
      lines.push(`${i === 0 ? 'contacts    ' : '            '} ${show(c.email)} (${via})`);
    }
  }
  if (a.candidates.length > 0) {
    lines.push('other candidates:');
    for (const c of a.candidates) {
      lines.push(`  ${show(c.orgName ?? `#${c.orgId}`, 60)} by ${show(describeEvidence(c.evidence), 160)}, confidence ${pct(c.confidence)}: lost (${c.lost}) ${show(c.why, 240)}`);
    }
    if (a.omitted > 0) lines.push(`  … and ${a.omitted} more`);
  }
  if (a.problem !== null) lines.push(`problem      ${show(a.problem)}`);
  if (answer.problems.length > 0) lines.push(`registry     ${answer.problems.length} entr${answer.problems.length === 1 ? 'y' : 'ies'} could not be used (a bug: please report)`);
  if ('stored' in answer) lines.push(...storedLines(answer));
  return `${lines.join('\n')}\n`;
}

/** The stored side (src/services/attribute.ts whoisAddress): facts used, the stored answer, the last owner changes. */
function storedLines(answer: AddressWhoisAnswer): string[] {
  const lines: string[] = [];
  const f = answer.facts;
  const names = [f.requestHost, f.feedHostname, f.certificate?.cn, ...(f.certificate?.sans ?? [])].filter((x): x is string => typeof x === 'string');
  lines.push(`facts        ${answer.observed ? 'from stored observations and flags' : 'from flags only (nothing stored about this address)'}${f.asn == null ? '' : `, ASN ${f.asn}`}${names.length === 0 ? '' : `, names ${show([...new Set(names)].slice(0, 8).join(' '), 200)}`}`);
  const s = answer.stored;
  if (s === null) {
    lines.push('stored       none (tocsin attribution refresh computes it for observed addresses)');
  } else {
    const who = s.orgId === null ? 'unattributed' : `${show(s.org ?? `#${s.orgId}`, 80)} by ${s.rule ?? '?'}`;
    lines.push(`stored       ${who}, registry revision ${s.registryRev}, at ${s.attributedAt}${s.tie ? ' (a tie)' : ''}`);
  }
  for (const c of answer.changes) {
    const name = (org: string | null, id: number | null): string => (id === null ? 'none' : show(org ?? `#${id}`, 60));
    lines.push(`changed      ${c.at}: ${name(c.fromOrg, c.fromOrgId)} -> ${name(c.toOrg, c.toOrgId)}${c.rule === null ? '' : ` (${c.rule})`}, registry revision ${c.registryRev}`);
  }
  return lines;
}
