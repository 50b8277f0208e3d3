/**
 * What an import of one source changes, as a pure diff of what the files say (desired) against what the
 * registry holds (current). The two-layer rule (certbund-contact's): an import owns only the `imported` rows of
 * its own source. It adds, changes and removes those; it never touches a manual row, never changes the
 * attributes of an organisation that was created or edited by hand (or by another source), and removes an
 * organisation only when it was this source's and nothing else hangs on it (the store checks that last part).
 * The same input against the state it produced plans nothing: that is what makes import idempotent.
 */
import type { ImportProblem, Layer, OrgRecord, RowRef } from './types.js';
import { quote } from './validate.js';

export type ItemKind = 'network' | 'asn' | 'domain' | 'contact';

/** The value of an item beyond its key (compared to decide "changed"). */
export type ItemValue = Readonly<Record<string, string | number | null>>;

export interface CurrentOrg {
  readonly id: number;
  readonly name: string;
  readonly layer: Layer;
  readonly source: string;
  readonly sector: string | null;
  readonly country: string | null;
  readonly size: string | null;
  readonly parentId: number | null;
}

/** An imported item of the source being imported. */
export interface CurrentItem {
  readonly id: number;
  readonly orgId: number;
  readonly kind: ItemKind;
  readonly key: string;
  readonly value: ItemValue;
}

export interface DesiredItem {
  /** Lower-case organisation name. */
  readonly org: string;
  readonly kind: ItemKind;
  readonly key: string;
  readonly value: ItemValue;
  readonly from: RowRef;
}

export interface OrgAttrs {
  readonly sector: string | null;
  readonly country: string | null;
  readonly size: string | null;
  /** Lower-case name of the parent, or null. */
  readonly parent: string | null;
}

export interface ImportPlan {
  readonly source: string;
  readonly createOrgs: readonly { readonly name: string; readonly attrs: OrgAttrs }[];
  readonly updateOrgs: readonly { readonly org: CurrentOrg; readonly attrs: OrgAttrs }[];
  readonly insertItems: readonly DesiredItem[];
  readonly updateItems: readonly { readonly current: CurrentItem; readonly value: ItemValue }[];
  readonly deleteItems: readonly CurrentItem[];
  /** Imported organisations of this source no longer in its files (removed unless something else hangs on them). */
  readonly deleteOrgs: readonly CurrentOrg[];
  /** Rows whose content changes the registry, as "file:line". */
  readonly changedRows: ReadonlySet<string>;
  /** Unresolvable parents. */
  readonly problems: readonly ImportProblem[];
}

export const rowKey = (r: RowRef): string => `${r.file}:${r.line}`;

/** The items of a record, keyed as the store keys them. */
export function recordItems(r: OrgRecord): DesiredItem[] {
  const org = r.name.toLowerCase();
  const out: DesiredItem[] = [];
  for (const n of r.networks) for (const cidr of n.cidrs) out.push({ org, kind: 'network', key: cidr, value: { text: n.text, abuseMailbox: n.abuseMailbox }, from: n.from });
  for (const a of r.asns) out.push({ org, kind: 'asn', key: String(a.asn), value: {}, from: a.from });
  for (const d of r.domains) out.push({ org, kind: 'domain', key: d.domain, value: {}, from: d.from });
  for (const c of r.contacts) {
    out.push({ org, kind: 'contact', key: contactKey(c.role, c.email), value: { email: c.email, language: c.language, pgp: c.pgp }, from: c.from });
  }
  return out;
}

export function contactKey(role: string, email: string): string {
  return `${role}|${email.toLowerCase()}`;
}

function sameValue(a: ItemValue, b: ItemValue): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if ((a[k] ?? null) !== (b[k] ?? null)) return false;
  return true;
}

export function planImport(
  source: string,
  desired: readonly OrgRecord[],
  orgs: readonly CurrentOrg[],
  items: readonly CurrentItem[],
): ImportPlan {
  const byName = new Map(orgs.map((o) => [o.name.toLowerCase(), o]));
  const byId = new Map(orgs.map((o) => [o.id, o]));
  const wanted = new Map(desired.map((r) => [r.name.toLowerCase(), r]));
  const changedRows = new Set<string>();
  const problems: ImportProblem[] = [];
  const createOrgs: { name: string; attrs: OrgAttrs }[] = [];
  const updateOrgs: { org: CurrentOrg; attrs: OrgAttrs }[] = [];
  // Parents as they will be (lower-case names): the registry's, overlaid with the files' where the import owns
  // the organisation; a parent that closes a loop is dropped here, so that the plan is stable (idempotent).
  const owns = (key: string): boolean => {
    const cur = byName.get(key);
    return cur === undefined || (cur.layer === 'imported' && cur.source === source);
  };
  const parentOf = new Map<string, string | null>();
  for (const o of orgs) parentOf.set(o.name.toLowerCase(), o.parentId === null ? null : (byId.get(o.parentId)?.name.toLowerCase() ?? null));
  for (const r of desired) {
    const key = r.name.toLowerCase();
    if (owns(key)) parentOf.set(key, null);
  }
  const parents = new Map<string, string | null>();
  for (const r of desired) {
    const key = r.name.toLowerCase();
    let parent = r.parent === null ? null : r.parent.toLowerCase();
    const at = r.rows[0] ?? { file: '', line: 0 };
    if (parent !== null && !wanted.has(parent) && !byName.has(parent)) {
      problems.push({ file: at.file, line: at.line, raw: r.parent ?? '', error: `parent ${quote(r.parent ?? '')} of ${quote(r.name)} is neither in the files nor in the registry: no parent set` });
      parent = null;
    }
    if (parent !== null && owns(key)) {
      let cur: string | null = parent;
      for (let steps = 0; cur !== null && steps <= parentOf.size; steps++) {
        if (cur === key) break;
        cur = parentOf.get(cur) ?? null;
      }
      if (cur === key) {
        problems.push({ file: at.file, line: at.line, raw: r.parent ?? '', error: `parent ${quote(r.parent ?? '')} of ${quote(r.name)} would make a loop: no parent set` });
        parent = null;
      }
      parentOf.set(key, parent);
    }
    parents.set(key, parent);
  }
  for (const r of desired) {
    const key = r.name.toLowerCase();
    const attrs: OrgAttrs = { sector: r.sector, country: r.country, size: r.size, parent: parents.get(key) ?? null };
    const cur = byName.get(key);
    const first = r.rows[0];
    if (cur === undefined) {
      createOrgs.push({ name: r.name, attrs });
      if (first !== undefined) changedRows.add(rowKey(first));
    } else if (cur.layer === 'imported' && cur.source === source) {
      const curParent = cur.parentId === null ? null : (byId.get(cur.parentId)?.name.toLowerCase() ?? null);
      if (cur.sector !== attrs.sector || cur.country !== attrs.country || cur.size !== attrs.size || curParent !== attrs.parent || cur.name !== r.name) {
        updateOrgs.push({ org: cur, attrs });
        if (first !== undefined) changedRows.add(rowKey(first));
      }
    }
  }
  const have = new Map<string, CurrentItem>();
  for (const it of items) {
    const org = byId.get(it.orgId);
    if (org !== undefined) have.set(`${org.name.toLowerCase()}\u0000${it.kind}\u0000${it.key}`, it);
  }
  const insertItems: DesiredItem[] = [];
  const updateItems: { current: CurrentItem; value: ItemValue }[] = [];
  const keep = new Set<string>();
  for (const r of desired) {
    for (const d of recordItems(r)) {
      const k = `${d.org}\u0000${d.kind}\u0000${d.key}`;
      if (keep.has(k)) continue;
      keep.add(k);
      const cur = have.get(k);
      if (cur === undefined) {
        insertItems.push(d);
        changedRows.add(rowKey(d.from));
      } else if (!sameValue(cur.value, d.value)) {
        updateItems.push({ current: cur, value: d.value });
        changedRows.add(rowKey(d.from));
      }
    }
  }
  const deleteItems = [...have.entries()].filter(([k]) => !keep.has(k)).map(([, it]) => it);
  const deleteOrgs = orgs.filter((o) => o.layer === 'imported' && o.source === source && !wanted.has(o.name.toLowerCase()));
  return { source, createOrgs, updateOrgs, insertItems, updateItems, deleteItems, deleteOrgs, changedRows, problems };
}

/** True when the plan changes nothing. */
export function isEmptyPlan(p: ImportPlan): boolean {
  return p.createOrgs.length + p.updateOrgs.length + p.insertItems.length + p.updateItems.length + p.deleteItems.length + p.deleteOrgs.length === 0;
}

/** Records of several inputs merged by organisation name (first attributes win; lists are unions). */
export function mergeRecords(records: readonly OrgRecord[]): OrgRecord[] {
  const out = new Map<string, OrgRecord>();
  for (const r of records) {
    const k = r.name.toLowerCase();
    const m = out.get(k);
    if (m === undefined) {
      out.set(k, r);
      continue;
    }
    out.set(k, {
      name: m.name,
      sector: m.sector ?? r.sector,
      country: m.country ?? r.country,
      size: m.size ?? r.size,
      parent: m.parent ?? r.parent,
      networks: [...m.networks, ...r.networks],
      asns: [...m.asns, ...r.asns],
      domains: [...m.domains, ...r.domains],
      contacts: [...m.contacts, ...r.contacts],
      rows: [...m.rows, ...r.rows],
    });
  }
  return [...out.values()];
}
