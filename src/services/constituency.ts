/**
 * Constituency use cases: import files as a named source, export, and manual changes to organisations and
 * their entries. Values are validated here with src/constituency (a bad manual value is TOCSIN_ARG_INVALID,
 * naming the value); the store applies them in locked transactions and audits every change as `who`.
 */
import { basename } from 'node:path';
import { userInfo } from 'node:os';
import { csvRecordsDocument } from '../core/csv.js';
import { TocsinError } from '../core/errors.js';
import {
  checkAsn,
  checkCountry,
  checkDomain,
  checkEmail,
  checkLanguage,
  checkNetwork,
  checkOrgName,
  checkPgp,
  checkRole,
  checkText,
  decodeImportFile,
  detectFormat,
  formatAsn,
  parseImport,
  planImport,
  rowKey,
  type Checked,
  type ImportFormat,
  type ImportInput,
  type ImportProblem,
} from '../constituency/index.js';
import type { AppliedImport, ConstituencyStore, ManualEntry, OrgDetail, OrgEdit, OrgRow } from '../platform/db/constituency-store.js';

/** Who a change is recorded as: `--as NAME`, else the OS user (USER/LOGNAME when the user has no passwd entry). */
export function changeAuthor(as: string | undefined): string {
  if (as !== undefined) return must(checkText('--as', as, 100)) ?? fail('--as must not be empty');
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? process.env.LOGNAME ?? `uid:${process.getuid?.() ?? '?'}`;
  }
}

function fail(message: string): never {
  throw new TocsinError('TOCSIN_ARG_INVALID', message);
}

function must<T>(c: Checked<T>): T {
  if (!c.ok) fail(c.error);
  return c.value;
}

export interface ImportFileBytes {
  /** The name as the user gave it (shown in reports). */
  readonly name: string;
  readonly bytes: Uint8Array;
}

export interface ImportRequest {
  readonly files: readonly ImportFileBytes[];
  /** Source name for every file; default: the file's base name (RPSL files: "rpsl", one source for the set). */
  readonly source?: string;
  readonly format: ImportFormat | 'auto';
  /** RPSL only: keep objects of this country (ISO code). */
  readonly country?: string;
  readonly who: string;
}

export interface FileReport {
  readonly file: string;
  readonly source: string;
  readonly format: ImportFormat | null;
  readonly rowsRead: number;
  /** Rows whose content changed the registry. */
  readonly imported: number;
  /** Rows already in the registry as given. */
  readonly unchanged: number;
  /** Rows set aside whole (no organisation name, wrong number of fields, malformed object). */
  readonly setAside: number;
  /** Rows not meant for import (RPSL: other countries, resources without an organisation, other classes). */
  readonly skipped: number;
  readonly problems: readonly ImportProblem[];
  /** Why the whole file was refused (then nothing of its source changed), or null. */
  readonly rejected: ImportProblem | null;
}

export interface SourceReport {
  readonly source: string;
  /** Null when a file of the source was refused (nothing of the source changed). */
  readonly applied: AppliedImport | null;
}

export interface ImportReport {
  readonly files: readonly FileReport[];
  readonly sources: readonly SourceReport[];
}

/** The source name of a file when --source is not given. */
function defaultSource(file: string, format: ImportFormat | null): string {
  return format === 'rpsl' ? 'rpsl' : basename(file) || file;
}

export async function importConstituency(store: ConstituencyStore, req: ImportRequest): Promise<ImportReport> {
  if (req.source !== undefined) must(checkText('--source', req.source, 100));
  if (req.source !== undefined && req.source.trim().toLowerCase() === 'manual') fail('--source "manual" is reserved for manual entries');
  const country = req.country === undefined ? undefined : (must(checkCountry(req.country)) ?? undefined);
  // Decode and tell the format of every file first; files are then grouped by source.
  const decoded = req.files.map((f) => {
    const d = decodeImportFile(f.name, f.bytes);
    if ('problem' in d) return { file: f.name, input: null, rejected: d.problem };
    const format = req.format === 'auto' ? detectFormat(f.name, d.text) : req.format;
    return { file: f.name, input: { file: f.name, text: d.text, format } satisfies ImportInput, rejected: null };
  });
  const groups = new Map<string, typeof decoded>();
  for (const d of decoded) {
    const source = req.source?.trim() ?? defaultSource(d.file, d.input?.format ?? null);
    const g = groups.get(source) ?? [];
    g.push(d);
    groups.set(source, g);
  }
  const files: FileReport[] = [];
  const sources: SourceReport[] = [];
  for (const [source, group] of groups) {
    const inputs = group.flatMap((d) => (d.input === null ? [] : [d.input]));
    const parsed = parseImport(inputs, country === undefined ? {} : { country });
    const rejected = new Map<string, ImportProblem>();
    for (const d of group) if (d.rejected !== null) rejected.set(d.file, d.rejected);
    for (const r of parsed.rejected) if (!rejected.has(r.file)) rejected.set(r.file, r);
    let changed: ReadonlySet<string> = new Set();
    let planProblems: readonly ImportProblem[] = [];
    let applied: AppliedImport | null = null;
    // A refused file refuses its whole source: applying the rest would remove what that file holds.
    if (rejected.size === 0) {
      const result = await store.importSource(source, req.who, (orgs, items) => planImport(source, parsed.records, orgs, items));
      changed = result.plan.changedRows;
      planProblems = result.plan.problems;
      applied = result.applied;
    }
    sources.push({ source, applied });
    const contributed = new Set(parsed.records.flatMap((r) => r.rows.map(rowKey)));
    for (const d of group) {
      const mine = (k: string): boolean => k.startsWith(`${d.file}:`) && /^\d+$/.test(k.slice(d.file.length + 1));
      const rowsRead = parsed.rowsRead.get(d.file) ?? 0;
      const skipped = parsed.skipped.get(d.file) ?? 0;
      const rowsIn = [...contributed].filter(mine).length;
      const imported = rejected.size === 0 ? [...changed].filter(mine).length : 0;
      files.push({
        file: d.file,
        source,
        format: d.input?.format ?? null,
        rowsRead,
        imported,
        unchanged: rejected.size === 0 ? rowsIn - imported : 0,
        setAside: Math.max(0, rowsRead - rowsIn - skipped),
        skipped,
        problems: [...parsed.problems, ...planProblems].filter((p) => p.file === d.file).sort((a, b) => a.line - b.line),
        rejected: rejected.get(d.file) ?? (rejected.size > 0 ? { file: d.file, line: 0, raw: '', error: `not applied: another file of source ${JSON.stringify(source)} was refused` } : null),
      });
    }
  }
  return { files, sources };
}

// ---------------------------------------------------------------------------------------------------
// Export

export const EXPORT_CSV_COLUMNS = ['organisation', 'sector', 'country', 'size', 'parent', 'networks', 'asns', 'domains', 'contact', 'abuse_contact', 'technical_contact'] as const;

/** Networks as given (a range once, not as its CIDRs), each once whatever its layers. */
function networkTexts(o: OrgDetail): string[] {
  return [...new Set(o.networks.map((n) => n.text))];
}

/** The registry as one JSON document that `constituency import --format json` reads back. */
export function exportJson(orgs: readonly OrgDetail[]): string {
  const doc = {
    organisations: orgs.map((o) => ({
      name: o.name,
      sector: o.sector,
      country: o.country,
      size: o.size,
      parent: o.parent,
      layer: o.layer,
      source: o.source,
      networks: networkTexts(o),
      asns: [...new Set(o.asns.map((a) => formatAsn(a.asn)))],
      domains: [...new Set(o.domains.map((d) => d.domain))],
      contacts: dedupeContacts(o).map((c) => ({ role: c.role, email: c.email, language: c.language, pgp: c.pgp })),
      optOuts: o.optOuts.map((x) => ({ condition: x.condition, expiresAt: x.expiresAt })),
    })),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Manual contacts first, so a manual entry's language and key win over an imported one for the same address. */
function dedupeContacts(o: OrgDetail): OrgDetail['contacts'] {
  const seen = new Set<string>();
  const sorted = [...o.contacts].sort((a, b) => (a.layer === b.layer ? 0 : a.layer === 'manual' ? -1 : 1));
  return sorted.filter((c) => {
    const k = `${c.role}|${c.email.toLowerCase()}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** One row per organisation, through core/csv (formula guard); lists joined with spaces. */
export function exportCsv(orgs: readonly OrgDetail[]): string {
  const emails = (o: OrgDetail, role: string): string => dedupeContacts(o).filter((c) => c.role === role).map((c) => c.email).join(' ');
  return csvRecordsDocument(EXPORT_CSV_COLUMNS, orgs.map((o) => ({
    organisation: o.name,
    sector: o.sector,
    country: o.country,
    size: o.size,
    parent: o.parent,
    networks: networkTexts(o).join('; '),
    asns: [...new Set(o.asns.map((a) => formatAsn(a.asn)))].join(' '),
    domains: [...new Set(o.domains.map((d) => d.domain))].join(' '),
    contact: emails(o, 'security'),
    abuse_contact: emails(o, 'abuse'),
    technical_contact: emails(o, 'technical'),
  })));
}

// ---------------------------------------------------------------------------------------------------
// Manual changes

export interface OrgFields {
  readonly sector?: string;
  readonly country?: string;
  readonly size?: string;
  readonly parent?: string;
}

/** Flag values to an edit: '' clears a field. */
function orgEdit(f: OrgFields & { readonly name?: string }): OrgEdit {
  const edit: { -readonly [K in keyof OrgEdit]: OrgEdit[K] } = {};
  if (f.name !== undefined) edit.name = must(checkOrgName(f.name));
  if (f.sector !== undefined) edit.sector = must(checkText('sector', f.sector, 100));
  if (f.country !== undefined) edit.country = must(checkCountry(f.country));
  if (f.size !== undefined) edit.size = must(checkText('size', f.size, 40));
  if (f.parent !== undefined) edit.parent = f.parent.trim() === '' ? null : must(checkOrgName(f.parent));
  return edit;
}

export function addOrg(store: ConstituencyStore, name: string, fields: OrgFields, who: string): Promise<OrgRow> {
  return store.addOrg(must(checkOrgName(name)), orgEdit(fields), who);
}

export function editOrg(store: ConstituencyStore, name: string, fields: OrgFields & { readonly name?: string }, who: string): ReturnType<ConstituencyStore['editOrg']> {
  const edit = orgEdit(fields);
  if (Object.keys(edit).length === 0) fail('nothing to change: give --name, --sector, --country, --size or --parent');
  return store.editOrg(name, edit, who);
}

export async function showOrg(store: ConstituencyStore, name: string): Promise<OrgDetail> {
  const o = await store.getOrg(name);
  if (o === null) throw new TocsinError('TOCSIN_ORG_NOT_FOUND', `no organisation named ${JSON.stringify(name.slice(0, 200))}`);
  return o;
}

export type EntryKind = ManualEntry['kind'];

export interface EntryArgs {
  /** network: CIDR/address/range; asn; domain. */
  readonly value?: string;
  readonly role?: string;
  readonly email?: string;
  readonly language?: string;
  readonly pgp?: string;
  readonly condition?: string;
  readonly expires?: string;
}

/** A validated manual entry from command-line values. `now` decides whether an expiry is in the past. */
export function manualEntry(kind: EntryKind, a: EntryArgs, now: Date, forRemoval = false): ManualEntry {
  const need = (v: string | undefined, what: string): string => (v === undefined || v.trim() === '' ? fail(`${what} is required`) : v);
  if (kind === 'network') {
    const n = must(checkNetwork(need(a.value, 'the network (CIDR, address or range)')));
    return { kind, text: n.text, cidrs: n.cidrs };
  }
  if (kind === 'asn') return { kind, asn: must(checkAsn(need(a.value, 'the AS number'))) };
  if (kind === 'domain') return { kind, domain: must(checkDomain(need(a.value, 'the domain'))) };
  if (kind === 'contact') {
    return {
      kind,
      role: must(checkRole(need(a.role, '--role (security, abuse or technical)'))),
      email: must(checkEmail(need(a.email, '--email'))),
      language: must(checkLanguage(a.language ?? '')),
      pgp: must(checkPgp(a.pgp ?? '')),
    };
  }
  const condition = must(checkText('--condition', need(a.condition, '--condition'), 200)) ?? fail('--condition is required');
  if (forRemoval) return { kind, condition, expiresAt: null };
  const raw = need(a.expires, '--expires (a date such as 2027-06-30, or "never")').trim();
  if (raw.toLowerCase() === 'never') return { kind, condition, expiresAt: null };
  const t = /^\d{4}-\d{2}-\d{2}$/.test(raw) ? Date.parse(`${raw}T23:59:59Z`) : /^\d{4}-\d{2}-\d{2}T/.test(raw) ? Date.parse(raw) : Number.NaN;
  if (!Number.isFinite(t)) fail(`--expires ${JSON.stringify(raw.slice(0, 40))} is not a date (give YYYY-MM-DD, an ISO time, or "never")`);
  if (t <= now.getTime()) fail(`--expires ${raw} is in the past`);
  return { kind, condition, expiresAt: new Date(t).toISOString() };
}
