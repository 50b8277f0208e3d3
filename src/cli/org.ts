/**
 * `tocsin org list|show|add|edit|remove` and `tocsin org network|asn|domain|contact|opt-out add|remove ORG ...`:
 * manual changes to the constituency registry. Manual entries win over imported ones and survive re-imports;
 * every change is audited as the OS user or `--as NAME` (`tocsin constituency audit`).
 * Thin: parse → src/services/constituency.ts → print.
 */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { TocsinError } from '../core/errors.js';
import { csvRecordsDocument } from '../core/csv.js';
import { sanitiseText } from '../core/text.js';
import { formatAsn } from '../constituency/index.js';
import { openDatabase } from '../platform/db/connect.js';
import { createConstituencyStore, type ConstituencyStore, type OrgDetail } from '../platform/db/constituency-store.js';
import { addOrg, changeAuthor, editOrg, manualEntry, showOrg, type EntryArgs, type EntryKind, type OrgFields } from '../services/constituency.js';

const show = (s: string | null, max = 80): string => (s === null ? '-' : sanitiseText(s, { max }));

interface WriteFlags extends OrgFields {
  as?: string;
  name?: string;
}

async function withStore<T>(ctx: CliContext, fn: (store: ConstituencyStore) => Promise<T>): Promise<T> {
  const database = await openDatabase(ctx.config());
  try {
    return await fn(createConstituencyStore(database.db));
  } finally {
    await database.close();
  }
}

function orgOptions(c: Command): Command {
  return c
    .option('--sector <sector>', 'sector (e.g. health, energy, government)')
    .option('--country <cc>', 'ISO 3166 two-letter country code')
    .option('--size <size>', 'size (free text, e.g. 250-999 or large)')
    .option('--parent <org>', 'the parent organisation\'s name');
}

export function register(program: Command, ctx: CliContext): void {
  const org = program.command('org').description('organisations of the constituency registry: list, show, add, edit, remove, and their networks, ASNs, domains, contacts and opt-outs');
  org.command('list')
    .description('list the organisations with their sector, country and counts of entries')
    .option('--format <format>', 'table | jsonl | csv (default table)')
    .action(async (flags: { format?: string }) => {
      const format = flags.format ?? 'table';
      if (!['table', 'jsonl', 'csv'].includes(format)) throw new TocsinError('TOCSIN_ARG_INVALID', `--format must be table, jsonl or csv, got ${JSON.stringify(show(format, 20))}`);
      const rows = await withStore(ctx, (s) => s.listOrgs());
      if (format === 'jsonl') for (const r of rows) ctx.stdout.write(`${JSON.stringify(r)}\n`);
      else if (format === 'csv') {
        ctx.stdout.write(csvRecordsDocument(['name', 'sector', 'country', 'size', 'parent', 'layer', 'source', 'networks', 'asns', 'domains', 'contacts'], rows.map((r) => ({ ...r }))));
      } else {
        ctx.stdout.write(`${'ORGANISATION'.padEnd(32)} ${'SECTOR'.padEnd(14)} CC ${'LAYER'.padEnd(8)} ${'SOURCE'.padEnd(20)} NETS  ASNS  DOMS  CONTACTS\n`);
        for (const r of rows) {
          ctx.stdout.write(`${show(r.name, 32).padEnd(32)} ${show(r.sector, 14).padEnd(14)} ${(r.country ?? '--').padEnd(2)} ${r.layer.padEnd(8)} ${show(r.source, 20).padEnd(20)} ` +
            `${String(r.networks).padStart(4)}  ${String(r.asns).padStart(4)}  ${String(r.domains).padStart(4)}  ${String(r.contacts).padStart(8)}\n`);
        }
        ctx.stderr.write(`tocsin: ${rows.length} organisation(s)\n`);
      }
    });
  org.command('show')
    .description('everything the registry holds about one organisation, with each entry\'s layer and source')
    .argument('<name>', 'organisation name (case-insensitive)')
    .option('--format <format>', 'text | json (default text)')
    .action(async (name: string, flags: { format?: string }) => {
      const format = flags.format ?? 'text';
      if (format !== 'text' && format !== 'json') throw new TocsinError('TOCSIN_ARG_INVALID', `--format must be text or json, got ${JSON.stringify(show(format, 20))}`);
      const o = await withStore(ctx, (s) => showOrg(s, name));
      ctx.stdout.write(format === 'json' ? `${JSON.stringify(o, null, 2)}\n` : renderOrg(o));
    });
  orgOptions(org.command('add'))
    .description('add an organisation by hand (manual layer)')
    .argument('<name>', 'organisation name (unique, case-insensitive)')
    .option('--as <name>', 'record the change as made by NAME (default: the OS user)')
    .action(async (name: string, flags: WriteFlags) => {
      const o = await withStore(ctx, (s) => addOrg(s, name, flags, changeAuthor(flags.as)));
      ctx.stdout.write(`added organisation ${show(o.name)} (id ${o.id})\n`);
    });
  orgOptions(org.command('edit'))
    .description('change an organisation\'s attributes (an empty value clears one); an edited organisation becomes manual: imports no longer change or remove it')
    .argument('<name>', 'organisation name (case-insensitive)')
    .option('--name <new>', 'rename it')
    .option('--as <name>', 'record the change as made by NAME (default: the OS user)')
    .action(async (name: string, flags: WriteFlags) => {
      const { name: rename, as, ...fields } = flags;
      const r = await withStore(ctx, (s) => editOrg(s, name, { ...fields, ...(rename === undefined ? {} : { name: rename }) }, changeAuthor(as)));
      ctx.stdout.write(r.changed ? `changed organisation ${show(r.after.name)}\n` : `nothing changed: ${show(r.before.name)} has these values already\n`);
    });
  org.command('remove')
    .description('remove an organisation with all its entries (every layer); an import of its source adds it again')
    .argument('<name>', 'organisation name (case-insensitive)')
    .option('--as <name>', 'record the change as made by NAME (default: the OS user)')
    .action(async (name: string, flags: { as?: string }) => {
      const o = await withStore(ctx, (s) => s.removeOrg(name, changeAuthor(flags.as)));
      ctx.stdout.write(`removed organisation ${show(o.name)} with ${o.networks.length} network(s), ${o.asns.length} ASN(s), ${o.domains.length} domain(s), ${o.contacts.length} contact(s), ${o.optOuts.length} opt-out(s)\n`);
    });

  entryCommands(ctx, org, 'network', '<cidr>', 'a CIDR, an address or a range "a - b" (quoted)');
  entryCommands(ctx, org, 'asn', '<asn>', 'AS64496 or 64496');
  entryCommands(ctx, org, 'domain', '<domain>', 'a domain (covers its sub-domains); IDN are stored as punycode');
  entryCommands(ctx, org, 'contact', null, '');
  entryCommands(ctx, org, 'opt-out', null, '');
}

function entryCommands(ctx: CliContext, org: Command, kind: EntryKind, valueArg: string | null, valueHelp: string): void {
  const group = org.command(kind).description(`add or remove an organisation's ${kind === 'opt-out' ? 'opt-outs' : `${kind}s`} (manual layer)`);
  for (const op of ['add', 'remove'] as const) {
    const c = group.command(op)
      .description(op === 'add' ? `add a manual ${kind}` : `remove a ${kind} (any layer; an imported one comes back with its source's next import)`)
      .argument('<org>', 'organisation name (case-insensitive)');
    if (valueArg !== null) c.argument(valueArg, valueHelp);
    if (kind === 'contact') {
      c.requiredOption('--role <role>', 'security | abuse | technical').requiredOption('--email <address>', 'e-mail address');
      if (op === 'add') c.option('--lang <tag>', 'language (e.g. de, en)').option('--pgp <fingerprint>', 'OpenPGP fingerprint (40 or 64 hex digits)');
    }
    if (kind === 'opt-out') {
      c.requiredOption('--condition <text>', 'what the organisation opted out of, e.g. all, cve:CVE-2021-26855, source:shadowserver');
      if (op === 'add') c.requiredOption('--expires <date>', 'YYYY-MM-DD, an ISO time, or never');
    }
    c.option('--as <name>', 'record the change as made by NAME (default: the OS user)');
    c.action(async (...args: unknown[]) => {
      const orgName = String(args[0]);
      const value = valueArg === null ? undefined : String(args[1]);
      const flags = (args[valueArg === null ? 1 : 2] ?? {}) as { role?: string; email?: string; lang?: string; pgp?: string; condition?: string; expires?: string; as?: string };
      const a: EntryArgs = {
        ...(value === undefined ? {} : { value }),
        ...(flags.role === undefined ? {} : { role: flags.role }),
        ...(flags.email === undefined ? {} : { email: flags.email }),
        ...(flags.lang === undefined ? {} : { language: flags.lang }),
        ...(flags.pgp === undefined ? {} : { pgp: flags.pgp }),
        ...(flags.condition === undefined ? {} : { condition: flags.condition }),
        ...(flags.expires === undefined ? {} : { expires: flags.expires }),
      };
      const entry = manualEntry(kind, a, new Date(), op === 'remove');
      const who = changeAuthor(flags.as);
      const what = `${kind} ${show(value ?? flags.email ?? flags.condition ?? '', 100)}`;
      if (op === 'add') {
        const added = await withStore(ctx, (s) => s.addEntry(orgName, entry, who));
        ctx.stdout.write(added ? `added ${what} to ${show(orgName)}\n` : `${show(orgName)} has this manual ${kind} already: nothing changed\n`);
      } else {
        const n = await withStore(ctx, (s) => s.removeEntry(orgName, entry, who));
        ctx.stdout.write(`removed ${what} from ${show(orgName)} (${n} row(s))\n`);
      }
    });
  }
}

export function renderOrg(o: OrgDetail): string {
  const lines = [
    `${show(o.name, 200)}  (id ${o.id}, ${o.layer}${o.layer === 'imported' ? ` from ${show(o.source, 100)}` : ''})`,
    `  sector:  ${show(o.sector)}`,
    `  country: ${o.country ?? '-'}`,
    `  size:    ${show(o.size)}`,
    `  parent:  ${show(o.parent, 200)}`,
  ];
  const prov = (p: { layer: string; source: string }): string => (p.layer === 'manual' ? '[manual]' : `[imported: ${show(p.source, 60)}]`);
  const section = (title: string, items: string[]): void => {
    lines.push(`  ${title} (${items.length})${items.length === 0 ? '' : ':'}`);
    for (const i of items) lines.push(`    ${i}`);
  };
  section('networks', o.networks.map((n) => `${n.network}${n.text !== n.network ? `  (given as ${show(n.text, 90)})` : ''}${n.abuseMailbox === null ? '' : `  abuse: ${show(n.abuseMailbox)}`}  ${prov(n)}`));
  section('ASNs', o.asns.map((a) => `${formatAsn(a.asn)}  ${prov(a)}`));
  section('domains', o.domains.map((d) => `${d.domain}  ${prov(d)}`));
  section('contacts', o.contacts.map((c) => `${c.role.padEnd(9)} ${show(c.email, 120)}${c.language === null ? '' : `  lang ${c.language}`}${c.pgp === null ? '' : `  pgp ${c.pgp}`}  ${prov(c)}`));
  section('opt-outs', o.optOuts.map((x) => `${show(x.condition, 120)}  until ${x.expiresAt ?? 'removed'}  ${prov(x)}`));
  return `${lines.join('\n')}\n`;
}
