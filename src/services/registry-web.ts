/**
 * The constituency registry and the attribution review queue as the web sees them (issue 10 §3): thin wrappers over
 * src/services/constituency.ts and src/services/attribute.ts that take the database (src/web never sees
 * src/platform), resolve an organisation by id or name, page listings and shape answers as plain JSON data.
 * Every change is made by the same store functions as `tocsin org` and `tocsin attribution`, so it lands in the
 * registry's own audit trail (constituency_audit, or the override row's created_by) with `who` as the author.
 */
import type { Kysely } from 'kysely';
import { TocsinError } from '../core/errors.js';
import { createConstituencyStore, type AuditRow, type ConstituencyStore, type OrgDetail, type OrgListRow } from '../platform/db/constituency-store.js';
import type { DbSchema, Json } from '../platform/db/schema.js';
import { assignAddress, reviewQueue, unassignAddress, type RefreshSummary, type ReviewRow } from './attribute.js';
import { addOrg, editOrg, manualEntry, showOrg, type EntryArgs, type EntryKind, type OrgFields } from './constituency.js';
import type { Scope } from './accounts.js';

export type { AuditRow, OrgDetail, OrgListRow } from '../platform/db/constituency-store.js';
export type { EntryArgs, EntryKind } from './constituency.js';
export type { RefreshSummary } from './attribute.js';

type Db = Kysely<DbSchema>;

export const ENTRY_KINDS: readonly EntryKind[] = ['network', 'asn', 'domain', 'contact', 'opt-out'];

const store = (db: Db): ConstituencyStore => createConstituencyStore(db);

// ---------------------------------------------------------------------------------------------------
// Organisations

export interface OrgPageQuery {
  /** Part of the name, case-insensitive. */
  readonly q?: string;
  /** The sector, case-insensitive, exactly. */
  readonly sector?: string;
  readonly offset?: number;
  readonly limit?: number;
}

export interface OrgPage {
  readonly items: readonly OrgListRow[];
  /** Organisations matching the filter (all pages). */
  readonly total: number;
  readonly offset: number;
  readonly nextOffset: number | null;
  /** Every sector in the registry, sorted (for a filter's choices). */
  readonly sectors: readonly string[];
}

/**
 * One page of organisations in name order. The store lists the whole registry (with entry counts) in one query;
 * a national registry is a few thousand rows, so the filter and the page are cut here rather than in SQL.
 */
export async function orgPage(db: Db, q: OrgPageQuery): Promise<OrgPage> {
  const all = await store(db).listOrgs();
  const needle = q.q?.trim().toLowerCase() ?? '';
  const sector = q.sector?.trim().toLowerCase() ?? '';
  const hits = all.filter((o) => (needle === '' || o.name.toLowerCase().includes(needle)) && (sector === '' || (o.sector ?? '').toLowerCase() === sector));
  const offset = Math.max(0, q.offset ?? 0);
  const limit = Math.min(500, Math.max(1, q.limit ?? 50));
  const items = hits.slice(offset, offset + limit);
  const sectors = [...new Set(all.flatMap((o) => (o.sector === null ? [] : [o.sector])))].sort((a, b) => a.localeCompare(b));
  return { items, total: hits.length, offset, nextOffset: offset + limit < hits.length ? offset + limit : null, sectors };
}

/** Organisations read per keyset page by a download. */
export const ORG_EXPORT_PAGE = 500;

/**
 * Every organisation matching the filter, in name order, as a lazy stream of keyset pages filtered in the query
 * (CSV/JSONL downloads, src/web/export-format.ts): the same rows as orgPage over all its pages. Staff only.
 */
export async function* orgRecords(db: Db, q: Pick<OrgPageQuery, 'q' | 'sector'>, pageSize = ORG_EXPORT_PAGE): AsyncGenerator<OrgListRow> {
  const nameContains = q.q?.trim() ?? '';
  const sector = q.sector?.trim() ?? '';
  let after: { name: string; id: number } | null = null;
  for (;;) {
    const rows = await store(db).listOrgs({ after, limit: pageSize, nameContains, sector });
    for (const r of rows) yield r;
    const last = rows[rows.length - 1];
    if (rows.length < pageSize || last === undefined) return;
    after = { name: last.name, id: last.id };
  }
}

/**
 * An organisation by its id (digits) or its name (case-insensitive). A name made only of digits is looked up as
 * a name when no organisation has that id.
 * @throws TOCSIN_ORG_NOT_FOUND
 */
export async function findOrg(db: Db, ref: string): Promise<OrgDetail> {
  const s = store(db);
  if (/^\d{1,15}$/.test(ref)) {
    const id = Number(ref);
    const row = (await s.listOrgs()).find((o) => o.id === id);
    if (row !== undefined) return showOrg(s, row.name);
  }
  return showOrg(s, ref);
}

export interface OrgInput extends OrgFields {
  readonly name: string;
}

export async function createOrg(db: Db, input: OrgInput, who: string): Promise<OrgDetail> {
  const { name, ...fields } = input;
  const o = await addOrg(store(db), name, fields, who);
  return showOrg(store(db), o.name);
}

/** Changes an organisation's fields ('' clears one); an edited organisation becomes manual (as `tocsin org edit`). */
export async function updateOrg(db: Db, ref: string, fields: OrgFields & { readonly name?: string }, who: string): Promise<{ org: OrgDetail; changed: boolean }> {
  const before = await findOrg(db, ref);
  const r = await editOrg(store(db), before.name, fields, who);
  return { org: await showOrg(store(db), r.after.name), changed: r.changed };
}

/** Adds a manual entry; `added` is false when the same manual entry was there already (nothing changed). */
export async function addOrgEntry(db: Db, ref: string, kind: EntryKind, args: EntryArgs, who: string, now = new Date()): Promise<{ org: OrgDetail; added: boolean }> {
  const entry = manualEntry(kind, args, now);
  const o = await findOrg(db, ref);
  const added = await store(db).addEntry(o.name, entry, who);
  return { org: await showOrg(store(db), o.name), added };
}

/**
 * Removes an entry of any layer (an imported one comes back with its source's next import, as with the CLI).
 * @throws TOCSIN_ORG_ENTRY_NOT_FOUND
 */
export async function removeOrgEntry(db: Db, ref: string, kind: EntryKind, args: EntryArgs, who: string): Promise<{ org: OrgDetail; removed: number }> {
  const entry = manualEntry(kind, args, new Date(), true);
  const o = await findOrg(db, ref);
  const removed = await store(db).removeEntry(o.name, entry, who);
  return { org: await showOrg(store(db), o.name), removed };
}

export interface ContactChange {
  readonly role?: string;
  readonly email?: string;
  /** '' clears it. */
  readonly language?: string;
  /** '' clears it. */
  readonly pgp?: string;
}

/**
 * Edits a contact (its role, address, language or key): the registry has no in-place edit, so this is the
 * audited pair "add the new manual contact, remove the old one" (old first when the key is unchanged, since the
 * two would collide). Both values are validated before anything changes; the result is a manual contact, so a
 * re-import of the old contact's source does not undo the edit (it may bring the imported original back beside it).
 * Not one transaction: a concurrent reader may briefly see both contacts or, for an unchanged key, neither.
 */
export async function editContact(db: Db, ref: string, current: { readonly role: string; readonly email: string }, change: ContactChange, who: string): Promise<{ org: OrgDetail }> {
  const o = await findOrg(db, ref);
  const old = manualEntry('contact', { role: current.role, email: current.email }, new Date(), true);
  if (old.kind !== 'contact') throw new TocsinError('TOCSIN_INTERNAL', 'a contact entry was expected');
  const existing = o.contacts.filter((c) => c.role === old.role && c.email.toLowerCase() === old.email.toLowerCase());
  const base = existing.find((c) => c.layer === 'manual') ?? existing[0];
  if (base === undefined) throw new TocsinError('TOCSIN_ORG_ENTRY_NOT_FOUND', `${JSON.stringify(o.name)} has no ${old.role} contact ${JSON.stringify(old.email)}`);
  const next = manualEntry('contact', {
    role: change.role ?? base.role,
    email: change.email ?? base.email,
    language: change.language ?? base.language ?? '',
    pgp: change.pgp ?? base.pgp ?? '',
  }, new Date());
  if (next.kind !== 'contact') throw new TocsinError('TOCSIN_INTERNAL', 'a contact entry was expected');
  const s = store(db);
  const sameKey = next.role === old.role && next.email.toLowerCase() === old.email.toLowerCase();
  if (sameKey) {
    if (existing.every((c) => c.layer === 'manual') && next.email === base.email && next.language === base.language && next.pgp === base.pgp) return { org: o };
    await s.removeEntry(o.name, old, who);
    await s.addEntry(o.name, next, who);
  } else {
    await s.addEntry(o.name, next, who);
    await s.removeEntry(o.name, old, who);
  }
  return { org: await showOrg(s, o.name) };
}

/** The registry's audit trail of one organisation, newest first. */
export async function orgHistory(db: Db, ref: string, limit = 100): Promise<{ org: OrgDetail; rows: readonly AuditRow[] }> {
  const o = await findOrg(db, ref);
  // The store keys the trail by organisation id, so a renamed organisation keeps its history.
  return { org: o, rows: await store(db).audit({ org: o.name, limit }) };
}

/** Audit rows read per keyset page by a download. */
export const AUDIT_EXPORT_PAGE = 1000;

/**
 * The whole audit trail of one organisation, newest first, as a lazy stream of keyset pages (a download; the JSON
 * answer stops at its limit). The organisation is resolved first, so an unknown one is still a 404. Staff only.
 */
export async function orgHistoryRecords(db: Db, ref: string, pageSize = AUDIT_EXPORT_PAGE): Promise<{ org: OrgDetail; records: AsyncIterable<AuditRow> }> {
  const o = await findOrg(db, ref);
  async function* walk(): AsyncGenerator<AuditRow> {
    let beforeId: number | undefined;
    for (;;) {
      const rows = await store(db).audit({ org: o.name, limit: pageSize, ...(beforeId === undefined ? {} : { beforeId }) });
      for (const r of rows) yield r;
      const last = rows[rows.length - 1];
      if (rows.length < pageSize || last === undefined) return;
      beforeId = last.id;
    }
  }
  return { org: o, records: walk() };
}

/** An organisation user's own registry entry, read-only; looked up by the scope (never by anything the caller sends). */
export async function myOrg(db: Db, scope: Scope): Promise<OrgDetail> {
  if (scope.kind !== 'org') throw new TocsinError('TOCSIN_FORBIDDEN', 'this is for organisation accounts: staff use /api/orgs/:id');
  const o = await findOrg(db, String(scope.orgId));
  // Defence in depth: the lookup was by the scope's id; another organisation here is a bug, never shown.
  if (o.id !== scope.orgId) throw new TocsinError('TOCSIN_INTERNAL', 'scoped organisation lookup returned another organisation');
  return o;
}

// ---------------------------------------------------------------------------------------------------
// Attribution review

export interface ReviewCandidate {
  readonly org: string | null;
  readonly orgId: number | null;
  readonly rule: string | null;
  readonly confidence: number | null;
  readonly lost: string | null;
  readonly why: string | null;
}

export interface ReviewItem {
  readonly ip: string;
  readonly kind: 'unattributed' | 'ambiguous';
  readonly org: string | null;
  readonly orgId: number | null;
  readonly rule: string | null;
  readonly ports: readonly number[];
  readonly hostnames: readonly string[];
  readonly feedAsn: number | null;
  readonly firstSeen: string | null;
  readonly lastSeen: string | null;
  readonly candidates: readonly ReviewCandidate[];
}

export interface ReviewPage {
  readonly items: readonly ReviewItem[];
  readonly offset: number;
  readonly nextOffset: number | null;
  readonly refresh: RefreshSummary;
}

const str = (v: Json | undefined): string | null => (typeof v === 'string' ? v : null);
const num = (v: Json | undefined): number | null => (typeof v === 'number' ? v : null);

/** The stored losing candidates, best first (at most `max`), as `tocsin attribution review --format jsonl` shows them. */
function candidatesOf(stored: Json, max = 5): ReviewCandidate[] {
  if (!Array.isArray(stored)) return [];
  return (stored as readonly Json[]).slice(0, max).flatMap((c): ReviewCandidate[] => {
    if (c === null || typeof c !== 'object' || Array.isArray(c)) return [];
    const o = c as { readonly [k: string]: Json };
    return [{ org: str(o.orgName), orgId: num(o.orgId), rule: str(o.rule), confidence: num(o.confidence), lost: str(o.lost), why: str(o.why) }];
  });
}

/**
 * One page of the review queue (refreshed first, as `tocsin attribution review`), in address order. The store
 * streams the queue from its start, so a page costs its offset in skipped rows: fine for a queue an analyst works
 * through (hundreds to a few thousand addresses).
 */
export async function reviewPage(db: Db, q: { readonly offset?: number; readonly limit?: number }): Promise<ReviewPage> {
  const offset = Math.max(0, q.offset ?? 0);
  const limit = Math.min(500, Math.max(1, q.limit ?? 50));
  const { summary, rows } = await reviewQueue(db, { limit: offset + limit + 1 });
  const items: ReviewItem[] = [];
  let seen = 0;
  for await (const r of rows) {
    if (seen++ < offset) continue;
    items.push(reviewItem(r));
  }
  const more = items.length > limit;
  return { items: items.slice(0, limit), offset, nextOffset: more ? offset + limit : null, refresh: summary };
}

function reviewItem(r: ReviewRow): ReviewItem {
  return {
    ip: r.ip, kind: r.kind, org: r.org, orgId: r.orgId, rule: r.rule, ports: r.ports, hostnames: r.hostnames, feedAsn: r.feedAsn,
    firstSeen: r.firstSeen, lastSeen: r.lastSeen, candidates: candidatesOf(r.candidates),
  };
}

/**
 * The whole review queue (refreshed first, as reviewPage), in address order, as a lazy stream: the store walks it
 * in keyset pages of 1,000 addresses as the stream is consumed (a download). Staff only.
 */
export async function reviewRecords(db: Db, pageSize?: number): Promise<AsyncIterable<ReviewItem>> {
  const { rows } = await reviewQueue(db, { limit: null, ...(pageSize === undefined ? {} : { pageSize }) });
  async function* items(): AsyncGenerator<ReviewItem> {
    for await (const r of rows) yield reviewItem(r);
  }
  return items();
}

export interface AssignAnswer {
  readonly target: string;
  readonly org: string;
  readonly orgId: number;
  readonly note: string | null;
  readonly createdBy: string;
  readonly createdAt: string;
  /** The stored answer of the address after the refresh (null for a network target). */
  readonly attribution: { readonly ip: string; readonly org: string | null; readonly orgId: number | null; readonly rule: string | null; readonly confidence: number } | null;
  readonly refresh: RefreshSummary;
}

/** A manual assignment (`tocsin attribution assign`), recorded with `who` on the override row, then a refresh. */
export async function assignTarget(db: Db, a: { readonly target: string; readonly org: string; readonly note?: string | null; readonly who: string }): Promise<AssignAnswer> {
  // Kept as given (like the CLI's --note); every reader escapes it for its medium.
  const note = a.note === undefined || a.note === null || a.note.trim() === '' ? null : a.note.trim().slice(0, 1000);
  const r = await assignAddress(db, { target: a.target, org: a.org, note, who: a.who });
  const s = r.attribution;
  return {
    target: r.override.target, org: r.override.org, orgId: r.override.orgId, note: r.override.note, createdBy: r.override.createdBy, createdAt: r.override.createdAt,
    attribution: s === null ? null : { ip: s.ip, org: s.org, orgId: s.orgId, rule: s.rule, confidence: s.confidence },
    refresh: r.refresh,
  };
}

export async function unassignTarget(db: Db, target: string): Promise<{ target: string; refresh: RefreshSummary }> {
  return unassignAddress(db, target);
}
