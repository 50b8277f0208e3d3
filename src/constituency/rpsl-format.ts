/**
 * RIPE-style RPSL split files (ripe.db.organisation, ripe.db.inetnum, ripe.db.inet6num, ripe.db.aut-num,
 * ripe.db.role), read together because their objects refer to each other:
 *   inetnum / inet6num / aut-num  --org:-->  organisation (org-name, country)
 *   organisation / resource       --abuse-c:-->  role (nic-hdl, abuse-mailbox)
 * Objects are separated by blank lines; an attribute is `name: value`, continued on lines starting with a
 * space, a tab or '+'; lines starting with '#' or '%' are comments, as is the rest of a value after '#'.
 * A resource becomes a network (inetnum ranges as the minimal CIDR list, text kept) or an ASN of the
 * organisation its `org:` names; the organisation's abuse-c mailbox becomes its abuse contact, a resource's
 * own abuse-c mailbox is kept on the network. With `country`, only inetnum/inet6num objects of that country
 * are kept, with the organisations they name and those organisations' aut-nums (certbund-contact's rule).
 * Resources without `org:` and objects of other classes are counted as skipped. Pure.
 */
import { RecordBuilder } from './builder.js';
import type { ParseResult, RowRef } from './types.js';

export interface RpslObject {
  readonly ref: RowRef;
  readonly raw: string;
  /** Class: the first attribute's name, lower-case. */
  readonly cls: string;
  /** The primary key: the first attribute's value. */
  readonly key: string;
  readonly attrs: ReadonlyMap<string, readonly string[]>;
}

export interface RpslSplit {
  readonly objects: RpslObject[];
  readonly problems: { ref: RowRef; raw: string; error: string }[];
}

/** Splits one file into objects; a malformed object is reported (with its first line and text) and left out. */
export function splitRpsl(file: string, text: string): RpslSplit {
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const lines = src.split(/\r?\n/);
  const objects: RpslObject[] = [];
  const problems: RpslSplit['problems'] = [];
  let block: { line: number; text: string }[] = [];
  const flush = (): void => {
    if (block.length === 0) return;
    const first = block[0] as { line: number; text: string };
    const ref = { file, line: first.line };
    const full = block.map((b) => b.text).join('\n');
    const raw = full.slice(0, 2000);
    block = [];
    const attrs = new Map<string, string[]>();
    let last: { name: string; values: string[] } | null = null;
    let cls = '';
    let key = '';
    for (const l of full.split('\n')) {
      if (/^[ \t+]/.test(l)) {
        if (last === null) {
          problems.push({ ref, raw, error: 'a continuation line before any attribute: object set aside' });
          return;
        }
        const more = stripComment(l.slice(1)).trim();
        const i = last.values.length - 1;
        last.values[i] = `${last.values[i] ?? ''} ${more}`.trim();
        continue;
      }
      const m = /^([A-Za-z0-9][A-Za-z0-9_-]*):(.*)$/.exec(l);
      if (m === null) {
        problems.push({ ref, raw, error: `not an "attribute: value" line: ${JSON.stringify(l.slice(0, 60))}: object set aside` });
        return;
      }
      const name = (m[1] ?? '').toLowerCase();
      const value = stripComment(m[2] ?? '').trim();
      if (cls === '') {
        cls = name;
        key = value;
      }
      const values = attrs.get(name) ?? [];
      values.push(value);
      attrs.set(name, values);
      last = { name, values };
    }
    objects.push({ ref, raw, cls, key, attrs });
  };
  lines.forEach((l, i) => {
    if (l.startsWith('#') || l.startsWith('%')) return;
    if (l.trim() === '') flush();
    else block.push({ line: i + 1, text: l });
  });
  flush();
  return { objects, problems };
}

function stripComment(v: string): string {
  const i = v.indexOf('#');
  return i < 0 ? v : v.slice(0, i);
}

const first = (o: RpslObject, name: string): string => (o.attrs.get(name)?.[0] ?? '').trim();

export function parseConstituencyRpsl(files: readonly { readonly file: string; readonly text: string }[], opts: { readonly country?: string } = {}): ParseResult {
  const country = opts.country?.toUpperCase();
  const b = new RecordBuilder();
  const rowsRead = new Map<string, number>();
  const skipped = new Map<string, number>();
  const skip = (o: RpslObject): void => {
    skipped.set(o.ref.file, (skipped.get(o.ref.file) ?? 0) + 1);
  };
  const orgs = new Map<string, RpslObject>();
  const roles = new Map<string, RpslObject>();
  const resources: RpslObject[] = [];
  for (const f of files) {
    const { objects, problems } = splitRpsl(f.file, f.text);
    rowsRead.set(f.file, objects.length + problems.length);
    for (const p of problems) b.problem(p.ref, p.raw, p.error);
    for (const o of objects) {
      if (o.cls === 'organisation') orgs.set(o.key.toUpperCase(), o);
      else if (o.cls === 'role') roles.set(first(o, 'nic-hdl').toUpperCase(), o);
      else if (o.cls === 'inetnum' || o.cls === 'inet6num' || o.cls === 'aut-num') resources.push(o);
      else skip(o);
    }
  }
  const usedRoles = new Set<string>();
  const mailbox = (o: RpslObject, org: string): string | null => {
    const handle = first(o, 'abuse-c').toUpperCase();
    if (handle === '') return null;
    const role = roles.get(handle);
    if (role !== undefined && !usedRoles.has(handle)) {
      usedRoles.add(handle);
      b.add(role.ref, role.raw, { name: org }); // counts the role object as used by this organisation
    }
    if (role === undefined) {
      if (roles.size > 0) b.problem(o.ref, o.raw, `abuse-c ${JSON.stringify(handle)} names no role object in the files given`);
      return null;
    }
    const m = first(role, 'abuse-mailbox');
    return m === '' ? null : m;
  };
  // With --country: the inet(6)nums of that country, then the organisations they name, then those orgs' aut-nums.
  const keptOrgs = new Set<string>();
  const keep: RpslObject[] = [];
  for (const r of resources) {
    const handle = first(r, 'org').toUpperCase();
    if (r.cls === 'aut-num') continue;
    if (country !== undefined && first(r, 'country').toUpperCase() !== country) skip(r);
    else if (handle === '') skip(r);
    else {
      keep.push(r);
      keptOrgs.add(handle);
    }
  }
  for (const r of resources) {
    if (r.cls !== 'aut-num') continue;
    const handle = first(r, 'org').toUpperCase();
    if (handle === '' || (country !== undefined && !keptOrgs.has(handle))) skip(r);
    else {
      keep.push(r);
      keptOrgs.add(handle);
    }
  }
  const used = new Set<string>();
  for (const r of keep) {
    const handle = first(r, 'org').toUpperCase();
    const org = orgs.get(handle);
    if (org === undefined) {
      b.problem(r.ref, r.raw, `org ${JSON.stringify(handle)} names no organisation object in the files given: object set aside`);
      continue;
    }
    const name = first(org, 'org-name');
    if (!used.has(handle)) {
      used.add(handle);
      const abuse = mailbox(org, name);
      b.add(org.ref, org.raw, {
        name,
        country: first(org, 'country'),
        contacts: abuse === null ? [] : [{ role: 'abuse', email: abuse }],
      });
    }
    const abuse = mailbox(r, name);
    if (r.cls === 'aut-num') b.add(r.ref, r.raw, { name, asns: [r.key] });
    else b.add(r.ref, r.raw, { name, networks: [r.key], ...(abuse === null ? {} : { abuseMailbox: abuse }) });
  }
  for (const [handle, o] of orgs) if (!used.has(handle)) skip(o);
  for (const [handle, o] of roles) if (!usedRoles.has(handle)) skip(o);
  return { records: b.records(), problems: b.problems, rowsRead, skipped, rejected: [] };
}
