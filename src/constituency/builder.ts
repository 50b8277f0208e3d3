/**
 * Merges what import rows say into one record per organisation (names compared case-insensitively), checking
 * each value. A bad value becomes a problem (file:line, raw row, reason) and the row's other values still go in;
 * the first row to give an attribute wins and a later row contradicting it is reported. Pure.
 */
import type { ContactRole, ImportProblem, NetworkEntry, OrgRecord, RowRef } from './types.js';
import { checkAsn, checkCountry, checkDomain, checkEmail, checkLanguage, checkNetwork, checkOrgName, checkPgp, checkText, quote, type Checked } from './validate.js';

/** The raw values of one row for one organisation, as strings (list values already split). */
export interface RowValues {
  readonly name: string;
  readonly sector?: string;
  readonly country?: string;
  readonly size?: string;
  readonly parent?: string;
  readonly networks?: readonly string[];
  /** Abuse mailbox of the networks of this row (RPSL), raw. */
  readonly abuseMailbox?: string;
  readonly asns?: readonly string[];
  readonly domains?: readonly string[];
  readonly contacts?: readonly { readonly role: ContactRole; readonly email: string; readonly language?: string; readonly pgp?: string }[];
}

type Attr = 'sector' | 'country' | 'size' | 'parent';

interface Draft {
  name: string;
  attrs: Record<Attr, { value: string | null; from: RowRef | null }>;
  networks: Map<string, NetworkEntry & { from: RowRef }>;
  asns: Map<number, { asn: number; from: RowRef }>;
  domains: Map<string, { domain: string; from: RowRef }>;
  contacts: Map<string, { role: ContactRole; email: string; language: string | null; pgp: string | null; from: RowRef }>;
  rows: RowRef[];
}

export class RecordBuilder {
  private readonly drafts = new Map<string, Draft>();
  readonly problems: ImportProblem[] = [];

  problem(ref: RowRef, raw: string, error: string): void {
    this.problems.push({ file: ref.file, line: ref.line, raw, error });
  }

  /** Adds one row; returns false when the row was set aside whole (no usable organisation name). */
  add(ref: RowRef, raw: string, v: RowValues): boolean {
    const name = checkOrgName(v.name);
    if (!name.ok) {
      this.problem(ref, raw, `${name.error}: row set aside`);
      return false;
    }
    const key = name.value.toLowerCase();
    let d = this.drafts.get(key);
    if (d === undefined) {
      const none = (): { value: string | null; from: RowRef | null } => ({ value: null, from: null });
      d = { name: name.value, attrs: { sector: none(), country: none(), size: none(), parent: none() }, networks: new Map(), asns: new Map(), domains: new Map(), contacts: new Map(), rows: [] };
      this.drafts.set(key, d);
    }
    d.rows.push(ref);
    const take = <T>(c: Checked<T>): T | undefined => {
      if (c.ok) return c.value;
      this.problem(ref, raw, c.error);
      return undefined;
    };
    const attr = (a: Attr, c: Checked<string | null> | undefined): void => {
      if (c === undefined) return;
      const value = take(c);
      if (value === undefined || value === null) return;
      const cur = d.attrs[a];
      if (cur.value === null) d.attrs[a] = { value, from: ref };
      else if (cur.value.toLowerCase() !== value.toLowerCase()) {
        this.problem(ref, raw, `${a} ${quote(value)} contradicts ${quote(cur.value)} given for ${quote(d.name)} on line ${cur.from?.line ?? '?'}; the first is kept`);
      }
    };
    attr('sector', v.sector === undefined ? undefined : checkText('sector', v.sector, 100));
    attr('country', v.country === undefined ? undefined : checkCountry(v.country));
    attr('size', v.size === undefined ? undefined : checkText('size', v.size, 40));
    if (v.parent !== undefined && v.parent.trim() !== '') {
      const p = checkOrgName(v.parent);
      if (p.ok && p.value.toLowerCase() === key) this.problem(ref, raw, `${quote(d.name)} cannot be its own parent`);
      else attr('parent', p.ok ? { ok: true, value: p.value } : p);
    }
    let abuse: string | null = null;
    if (v.abuseMailbox !== undefined && v.abuseMailbox.trim() !== '') abuse = take(checkEmail(v.abuseMailbox)) ?? null;
    for (const n of v.networks ?? []) {
      const spec = take(checkNetwork(n));
      if (spec === undefined) continue;
      for (const cidr of spec.cidrs) {
        // One entry per CIDR, keeping the text it was given as (a range gives several CIDRs with one text).
        if (!d.networks.has(cidr)) d.networks.set(cidr, { text: spec.text, cidrs: [cidr], abuseMailbox: abuse, from: ref });
      }
    }
    for (const a of v.asns ?? []) {
      const asn = take(checkAsn(a));
      if (asn !== undefined && !d.asns.has(asn)) d.asns.set(asn, { asn, from: ref });
    }
    for (const x of v.domains ?? []) {
      const domain = take(checkDomain(x));
      if (domain !== undefined && !d.domains.has(domain)) d.domains.set(domain, { domain, from: ref });
    }
    for (const c of v.contacts ?? []) {
      const email = take(checkEmail(c.email));
      if (email === undefined) continue;
      const language = take(checkLanguage(c.language ?? '')) ?? null;
      const pgp = take(checkPgp(c.pgp ?? '')) ?? null;
      const k = `${c.role}|${email.toLowerCase()}`;
      if (!d.contacts.has(k)) d.contacts.set(k, { role: c.role, email, language, pgp, from: ref });
    }
    return true;
  }

  /** The merged records, in the order organisations first appeared; parents named but not present are reported. */
  records(): OrgRecord[] {
    const out: OrgRecord[] = [];
    for (const d of this.drafts.values()) {
      out.push({
        name: d.name,
        sector: d.attrs.sector.value,
        country: d.attrs.country.value,
        size: d.attrs.size.value,
        parent: d.attrs.parent.value,
        networks: [...d.networks.values()],
        asns: [...d.asns.values()],
        domains: [...d.domains.values()],
        contacts: [...d.contacts.values()],
        rows: d.rows,
      });
    }
    return out;
  }
}
