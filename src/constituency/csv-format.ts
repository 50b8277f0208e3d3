/**
 * CSV constituency files, read by header name (column order is free; names are case-insensitive and '-' or ' '
 * count as '_'). One row names one organisation; rows with the same name are merged. List cells hold values
 * separated by spaces, ';' or ','. Columns (aliases in brackets):
 *   organisation (organization, org, name, org_name)  required
 *   sector, country, size, parent
 *   networks (network, cidr, cidrs, prefixes, inetnum)   CIDRs, addresses or ranges "a - b"
 *   asns (asn, as)                                       AS64496 or 64496
 *   as_or_cidr                                           either, per value (fody / certbund-contact exports)
 *   domains (domain)
 *   contact (contacts, email, e_mail, security_contact) with role (default security), language (lang), pgp
 *   abuse_contact (abuse, abuse_mailbox), technical_contact (tech_contact): contacts of those roles
 * Other columns (comment, ...) are ignored. Pure.
 */
import { RecordBuilder, type RowValues } from './builder.js';
import { csvRows } from './csv-rows.js';
import type { ContactRole, ImportProblem, ParseResult } from './types.js';
import { checkRole, splitList, splitNetworks } from './validate.js';

type Field = 'organisation' | 'sector' | 'country' | 'size' | 'parent' | 'networks' | 'asns' | 'as_or_cidr' | 'domains' | 'contact' | 'role' | 'language' | 'pgp' | 'abuse_contact' | 'technical_contact';

const ALIASES: Readonly<Record<string, Field>> = {
  organisation: 'organisation', organization: 'organisation', org: 'organisation', name: 'organisation', org_name: 'organisation',
  sector: 'sector', country: 'country', size: 'size', parent: 'parent',
  networks: 'networks', network: 'networks', cidr: 'networks', cidrs: 'networks', prefixes: 'networks', inetnum: 'networks',
  asns: 'asns', asn: 'asns', as: 'asns', as_or_cidr: 'as_or_cidr',
  domains: 'domains', domain: 'domains',
  contact: 'contact', contacts: 'contact', email: 'contact', e_mail: 'contact', security_contact: 'contact',
  role: 'role', contact_role: 'role', language: 'language', lang: 'language', pgp: 'pgp', pgp_fingerprint: 'pgp', openpgp: 'pgp',
  abuse_contact: 'abuse_contact', abuse: 'abuse_contact', abuse_mailbox: 'abuse_contact',
  technical_contact: 'technical_contact', tech_contact: 'technical_contact',
};

export function headerField(name: string): Field | undefined {
  const k = name.trim().toLowerCase().replace(/[\s-]+/g, '_');
  return Object.hasOwn(ALIASES, k) ? ALIASES[k] : undefined;
}

export function parseConstituencyCsv(file: string, text: string): ParseResult {
  const rows = csvRows(text);
  const rejected: ImportProblem[] = [];
  const header = rows[0];
  const index = new Map<Field, number>();
  header?.cells.forEach((h, i) => {
    const f = headerField(h);
    if (f !== undefined && !index.has(f)) index.set(f, i);
  });
  if (header === undefined || !index.has('organisation')) {
    rejected.push({ file, line: 1, raw: header?.raw ?? '', error: 'no "organisation" column in the header line (columns are read by name; see `tocsin constituency import --help`)' });
    return { records: [], problems: [], rowsRead: new Map([[file, 0]]), skipped: new Map(), rejected };
  }
  const b = new RecordBuilder();
  let read = 0;
  for (const row of rows.slice(1)) {
    if (row.cells.length === 1 && (row.cells[0] ?? '').trim() === '') continue; // blank line
    read++;
    const ref = { file, line: row.line };
    if (row.unterminated) {
      b.problem(ref, row.raw, 'a quoted field is not closed before the end of the file: row set aside');
      continue;
    }
    if (row.cells.length !== header.cells.length) {
      b.problem(ref, row.raw, `${row.cells.length} fields, the header has ${header.cells.length}: row set aside`);
      continue;
    }
    const cell = (f: Field): string | undefined => {
      const i = index.get(f);
      return i === undefined ? undefined : (row.cells[i] ?? '');
    };
    let role: ContactRole = 'security';
    const roleCell = cell('role');
    if (roleCell !== undefined && roleCell.trim() !== '') {
      const r = checkRole(roleCell);
      if (r.ok) role = r.value;
      else b.problem(ref, row.raw, `${r.error}; the row's "contact" addresses are taken as security contacts`);
    }
    const language = cell('language') ?? '';
    const pgp = cell('pgp') ?? '';
    const contacts: NonNullable<RowValues['contacts']>[number][] = [];
    const addContacts = (f: Field, r: ContactRole): void => {
      for (const email of splitList(cell(f) ?? '')) contacts.push({ role: r, email, language, pgp });
    };
    addContacts('contact', role);
    addContacts('abuse_contact', 'abuse');
    addContacts('technical_contact', 'technical');
    const networks = splitNetworks(cell('networks') ?? '');
    const asns = splitList(cell('asns') ?? '');
    for (const v of splitNetworks(cell('as_or_cidr') ?? '')) (/^(?:AS)?\d+$/i.test(v) ? asns : networks).push(v);
    const values: RowValues = {
      name: cell('organisation') ?? '',
      networks,
      asns,
      domains: splitList(cell('domains') ?? ''),
      contacts,
      ...optional('sector', cell('sector')),
      ...optional('country', cell('country')),
      ...optional('size', cell('size')),
      ...optional('parent', cell('parent')),
    };
    b.add(ref, row.raw, values);
  }
  return { records: b.records(), problems: b.problems, rowsRead: new Map([[file, read]]), skipped: new Map(), rejected };
}

function optional<K extends string>(k: K, v: string | undefined): Partial<Record<K, string>> {
  return v === undefined ? {} : ({ [k]: v } as Partial<Record<K, string>>);
}
