/**
 * The constituency registry in PostgreSQL (migration 0006): organisations with their networks (cidr, GiST),
 * ASNs, domains, contacts and opt-outs in two layers (imported by a named source | manual), and an audit row
 * for every change. Every write runs in a transaction holding one advisory lock, so an import and a manual
 * edit (or two imports) never interleave: the import's plan is made and applied against the same state.
 * Values reach this module validated (src/constituency/validate.ts); the store only checks existence.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import { TocsinError } from '../../core/errors.js';
import {
  checkNetwork,
  contactKey,
  formatAsn,
  type ContactRole,
  type CurrentItem,
  type CurrentOrg,
  type DesiredItem,
  type ImportPlan,
  type ItemKind,
  type ItemValue,
  type Layer,
} from '../../constituency/index.js';
import type { DbSchema, Json } from './schema.js';

/** Rows per INSERT (PostgreSQL allows 65,535 parameters per statement; a network row has 6). */
const BATCH = 1000;

/** Arbitrary constant naming "constituency registry writes" among advisory locks. */
const REGISTRY_LOCK_KEY = 7_305_113_206;

type Db = Kysely<DbSchema> | Transaction<DbSchema>;
type Entity = 'organisation' | 'network' | 'asn' | 'domain' | 'contact' | 'opt-out';

export interface OrgRow {
  readonly id: number;
  readonly name: string;
  readonly sector: string | null;
  readonly country: string | null;
  readonly size: string | null;
  readonly parent: string | null;
  readonly layer: Layer;
  readonly source: string;
}

export interface Provenance {
  readonly id: number;
  readonly layer: Layer;
  readonly source: string;
}
export interface NetworkRow extends Provenance {
  readonly network: string;
  readonly text: string;
  readonly abuseMailbox: string | null;
}
export interface AsnRow extends Provenance {
  readonly asn: number;
}
export interface DomainRow extends Provenance {
  readonly domain: string;
}
export interface ContactRow extends Provenance {
  readonly role: ContactRole;
  readonly email: string;
  readonly language: string | null;
  readonly pgp: string | null;
}
export interface OptOutRow extends Provenance {
  readonly condition: string;
  readonly expiresAt: string | null;
}

export interface OrgDetail extends OrgRow {
  readonly networks: readonly NetworkRow[];
  readonly asns: readonly AsnRow[];
  readonly domains: readonly DomainRow[];
  readonly contacts: readonly ContactRow[];
  readonly optOuts: readonly OptOutRow[];
}

export interface OrgListRow extends OrgRow {
  readonly networks: number;
  readonly asns: number;
  readonly domains: number;
  readonly contacts: number;
}

export interface AuditRow {
  readonly id: number;
  readonly at: string;
  readonly who: string;
  readonly action: 'create' | 'update' | 'delete';
  readonly entity: Entity;
  readonly entityId: number;
  readonly orgId: number;
  readonly source: string;
  readonly before: Json | null;
  readonly after: Json | null;
}

/** A network that contains an address, with its organisation (for `org show`, tests and attribution). */
export interface NetworkMatch extends NetworkRow {
  readonly orgId: number;
  readonly org: string;
  readonly prefix: number;
}

export interface AppliedImport {
  readonly orgsCreated: number;
  readonly orgsUpdated: number;
  readonly orgsRemoved: number;
  /** Organisations of the source no longer in its files, kept because manual or other sources' entries hang on them. */
  readonly orgsKept: readonly string[];
  readonly entriesAdded: number;
  readonly entriesChanged: number;
  readonly entriesRemoved: number;
}

/** The fields of an organisation a manual edit may set (undefined: unchanged; null: cleared). */
export interface OrgEdit {
  readonly name?: string;
  readonly sector?: string | null;
  readonly country?: string | null;
  readonly size?: string | null;
  readonly parent?: string | null;
}

/** A manual entry to add to or remove from an organisation. */
export type ManualEntry =
  | { readonly kind: 'network'; readonly text: string; readonly cidrs: readonly string[] }
  | { readonly kind: 'asn'; readonly asn: number }
  | { readonly kind: 'domain'; readonly domain: string }
  | { readonly kind: 'contact'; readonly role: ContactRole; readonly email: string; readonly language: string | null; readonly pgp: string | null }
  | { readonly kind: 'opt-out'; readonly condition: string; readonly expiresAt: string | null };

export const MANUAL_SOURCE = 'manual';

const TABLE = {
  network: 'constituency_networks',
  asn: 'constituency_asns',
  domain: 'constituency_domains',
  contact: 'constituency_contacts',
  'opt-out': 'constituency_opt_outs',
} as const;

interface AuditEntry {
  readonly action: 'create' | 'update' | 'delete';
  readonly entity: Entity;
  readonly entityId: number;
  readonly orgId: number;
  readonly source: string;
  readonly before: Json | null;
  readonly after: Json | null;
}

/** One keyset page of listOrgs: after the row (name, id) `after` (null: from the start), filtered in the query. */
export interface OrgListPage {
  readonly after: { readonly name: string; readonly id: number } | null;
  readonly limit: number;
  /** Part of the name, case-insensitive. */
  readonly nameContains?: string;
  /** The sector, case-insensitive, exactly. */
  readonly sector?: string;
}

export function createConstituencyStore(db: Kysely<DbSchema>) {
  /** Runs `fn` in a transaction holding the registry lock. */
  async function locked<T>(fn: (trx: Transaction<DbSchema>) => Promise<T>): Promise<T> {
    return db.transaction().execute(async (trx) => {
      await sql`SELECT pg_advisory_xact_lock(${REGISTRY_LOCK_KEY}::bigint)`.execute(trx);
      return fn(trx);
    });
  }

  /** Audit rows in unnest() batches: one parameter per column, so 60,000 rows are a handful of statements. */
  async function writeAudit(trx: Db, who: string, entries: readonly AuditEntry[]): Promise<void> {
    for (let i = 0; i < entries.length; i += 5 * BATCH) {
      const c = entries.slice(i, i + 5 * BATCH);
      const json = (v: Json | null): string | null => (v === null ? null : JSON.stringify(v));
      await sql`
        INSERT INTO constituency_audit (who, action, entity, entity_id, org_id, source, before, after)
        SELECT ${who}, a, e, eid, oid, s, b::jsonb, af::jsonb
        FROM unnest(${c.map((e) => e.action)}::text[], ${c.map((e) => e.entity)}::text[], ${c.map((e) => e.entityId)}::bigint[],
                    ${c.map((e) => e.orgId)}::bigint[], ${c.map((e) => e.source)}::text[], ${c.map((e) => json(e.before))}::text[],
                    ${c.map((e) => json(e.after))}::text[]) AS t(a, e, eid, oid, s, b, af)`.execute(trx);
    }
  }

  async function orgRows(trx: Db): Promise<CurrentOrg[]> {
    const rows = await trx.selectFrom('organisations').select(['id', 'name', 'layer', 'source', 'sector', 'country', 'size', 'parent_id']).execute();
    return rows.map((r) => ({ id: r.id, name: r.name, layer: r.layer, source: r.source, sector: r.sector, country: r.country, size: r.size, parentId: r.parent_id }));
  }

  /** The imported items of one source, keyed as src/constituency/plan.ts keys them. */
  async function sourceItems(trx: Db, source: string): Promise<CurrentItem[]> {
    const out: CurrentItem[] = [];
    const nets = await trx.selectFrom('constituency_networks').select(['id', 'org_id', 'network', 'text', 'abuse_mailbox'])
      .where('layer', '=', 'imported').where('source', '=', source).execute();
    for (const n of nets) {
      // The key as our own code writes a CIDR (PostgreSQL's text form could differ in spelling).
      const c = checkNetwork(n.network);
      out.push({ id: n.id, orgId: n.org_id, kind: 'network', key: c.ok ? (c.value.cidrs[0] ?? n.network) : n.network, value: { text: n.text, abuseMailbox: n.abuse_mailbox } });
    }
    const asns = await trx.selectFrom('constituency_asns').select(['id', 'org_id', 'asn']).where('layer', '=', 'imported').where('source', '=', source).execute();
    for (const a of asns) out.push({ id: a.id, orgId: a.org_id, kind: 'asn', key: String(a.asn), value: {} });
    const doms = await trx.selectFrom('constituency_domains').select(['id', 'org_id', 'domain']).where('layer', '=', 'imported').where('source', '=', source).execute();
    for (const d of doms) out.push({ id: d.id, orgId: d.org_id, kind: 'domain', key: d.domain, value: {} });
    const contacts = await trx.selectFrom('constituency_contacts').select(['id', 'org_id', 'role', 'email', 'language', 'pgp'])
      .where('layer', '=', 'imported').where('source', '=', source).execute();
    for (const c of contacts) out.push({ id: c.id, orgId: c.org_id, kind: 'contact', key: contactKey(c.role, c.email), value: { email: c.email, language: c.language, pgp: c.pgp } });
    return out;
  }

  function orgJson(o: { name: string; sector: string | null; country: string | null; size: string | null; parent: string | null; layer: Layer; source: string }): Json {
    return { name: o.name, sector: o.sector, country: o.country, size: o.size, parent: o.parent, layer: o.layer, source: o.source };
  }

  function itemJson(org: string, kind: ItemKind, key: string, value: ItemValue, layer: Layer, source: string): Json {
    const base: { [k: string]: Json } = { org, layer, source };
    if (kind === 'network') return { ...base, network: key, text: value.text ?? key, abuseMailbox: value.abuseMailbox ?? null };
    if (kind === 'asn') return { ...base, asn: formatAsn(Number(key)) };
    if (kind === 'domain') return { ...base, domain: key };
    return { ...base, role: key.split('|')[0] ?? '', email: value.email ?? '', language: value.language ?? null, pgp: value.pgp ?? null };
  }

  async function deleteItem(trx: Db, kind: ItemKind, id: number): Promise<void> {
    await trx.deleteFrom(TABLE[kind]).where('id', '=', id).execute();
  }

  async function insertItem(trx: Db, orgId: number, kind: ItemKind, key: string, value: ItemValue, layer: Layer, source: string): Promise<number | null> {
    const str = (k: string): string | null => (typeof value[k] === 'string' ? (value[k] as string) : null);
    let row: { id: number } | undefined;
    if (kind === 'network') {
      row = await trx.insertInto('constituency_networks').values({ org_id: orgId, network: key, text: str('text') ?? key, abuse_mailbox: str('abuseMailbox'), layer, source })
        .onConflict((oc) => oc.doNothing()).returning('id').executeTakeFirst();
    } else if (kind === 'asn') {
      row = await trx.insertInto('constituency_asns').values({ org_id: orgId, asn: Number(key), layer, source }).onConflict((oc) => oc.doNothing()).returning('id').executeTakeFirst();
    } else if (kind === 'domain') {
      row = await trx.insertInto('constituency_domains').values({ org_id: orgId, domain: key, layer, source }).onConflict((oc) => oc.doNothing()).returning('id').executeTakeFirst();
    } else {
      const role = key.split('|')[0] as ContactRole;
      row = await trx.insertInto('constituency_contacts').values({ org_id: orgId, role, email: str('email') ?? '', language: str('language'), pgp: str('pgp'), layer, source })
        .onConflict((oc) => oc.doNothing()).returning('id').executeTakeFirst();
    }
    return row?.id ?? null;
  }

  async function updateItem(trx: Db, kind: ItemKind, id: number, value: ItemValue): Promise<void> {
    const str = (k: string): string | null => (typeof value[k] === 'string' ? (value[k] as string) : null);
    if (kind === 'network') await trx.updateTable('constituency_networks').set({ text: str('text') ?? '', abuse_mailbox: str('abuseMailbox') }).where('id', '=', id).execute();
    else if (kind === 'contact') await trx.updateTable('constituency_contacts').set({ email: str('email') ?? '', language: str('language'), pgp: str('pgp') }).where('id', '=', id).execute();
  }

  async function findOrg(trx: Db, name: string): Promise<OrgRow | null> {
    const r = await trx.selectFrom('organisations as o').leftJoin('organisations as p', 'p.id', 'o.parent_id')
      .select(['o.id', 'o.name', 'o.sector', 'o.country', 'o.size', 'o.layer', 'o.source', 'p.name as parent'])
      .where(sql<boolean>`lower(o.name) = lower(${name})`).executeTakeFirst();
    return r === undefined ? null : { id: r.id, name: r.name, sector: r.sector, country: r.country, size: r.size, parent: r.parent, layer: r.layer, source: r.source };
  }

  async function requireOrg(trx: Db, name: string): Promise<OrgRow> {
    const o = await findOrg(trx, name);
    if (o === null) throw new TocsinError('TOCSIN_ORG_NOT_FOUND', `no organisation named ${JSON.stringify(name.slice(0, 200))}`);
    return o;
  }

  /** Would making `parentId` the parent of `orgId` close a loop? (Walks up from the parent.) */
  async function makesCycle(trx: Db, orgId: number, parentId: number): Promise<boolean> {
    const r = await sql<{ found: boolean }>`
      WITH RECURSIVE up(id, depth) AS (
        SELECT ${parentId}::bigint, 0
        UNION ALL
        SELECT o.parent_id, up.depth + 1 FROM organisations o JOIN up ON o.id = up.id WHERE o.parent_id IS NOT NULL AND up.depth < 1000
      )
      SELECT EXISTS (SELECT 1 FROM up WHERE id = ${orgId}) AS found`.execute(trx);
    return r.rows[0]?.found === true;
  }

  return {
    /** Imported orgs and items of a source, and every organisation (the state an import is planned against). */
    async importState(trx: Db, source: string): Promise<{ orgs: CurrentOrg[]; items: CurrentItem[] }> {
      return { orgs: await orgRows(trx), items: await sourceItems(trx, source) };
    },

    /**
     * Plans and applies one source's import in one locked transaction: `plan` is called with the state read
     * under the lock and its result applied, every change audited as `who`.
     */
    async importSource(source: string, who: string, plan: (orgs: CurrentOrg[], items: CurrentItem[]) => ImportPlan): Promise<{ plan: ImportPlan; applied: AppliedImport }> {
      return locked(async (trx) => {
        const state = await this.importState(trx, source);
        const p = plan(state.orgs, state.items);
        const applied = await applyPlan(trx, p, state.orgs, who);
        return { plan: p, applied };
      });
    },

    /**
     * Organisations by name with their entry counts: all of them, or with `page` one keyset page (after the row
     * `after`, at most `limit`) filtered in the query by part of the name and the sector (a streamed download).
     */
    async listOrgs(page?: OrgListPage): Promise<OrgListRow[]> {
      const count = (table: string): ReturnType<typeof sql<number>> => sql<number>`(SELECT count(*) FROM ${sql.table(table)} x WHERE x.org_id = o.id)`;
      let q = db.selectFrom('organisations as o').leftJoin('organisations as p', 'p.id', 'o.parent_id')
        .select(['o.id', 'o.name', 'o.sector', 'o.country', 'o.size', 'o.layer', 'o.source', 'p.name as parent'])
        .select([
          count('constituency_networks').as('networks'),
          count('constituency_asns').as('asns'),
          count('constituency_domains').as('domains'),
          count('constituency_contacts').as('contacts'),
        ])
        .orderBy(sql`lower(o.name)`);
      if (page !== undefined) {
        const after = page.after;
        if (after !== null) q = q.where(sql<boolean>`(lower(o.name), o.id) > (lower(${after.name}), ${after.id}::bigint)`);
        if (page.nameContains !== undefined && page.nameContains !== '') q = q.where(sql<boolean>`strpos(lower(o.name), lower(${page.nameContains})) > 0`);
        if (page.sector !== undefined && page.sector !== '') q = q.where(sql<boolean>`lower(o.sector) = lower(${page.sector})`);
        q = q.orderBy('o.id').limit(page.limit);
      }
      const rows = await q.execute();
      return rows.map((r) => ({ id: r.id, name: r.name, sector: r.sector, country: r.country, size: r.size, parent: r.parent, layer: r.layer, source: r.source, networks: r.networks, asns: r.asns, domains: r.domains, contacts: r.contacts }));
    },

    async getOrg(name: string): Promise<OrgDetail | null> {
      const o = await findOrg(db, name);
      return o === null ? null : detail(db, o);
    },

    /** Every organisation with everything it holds, by name. */
    async exportAll(): Promise<OrgDetail[]> {
      const orgs = await this.listOrgs();
      const out: OrgDetail[] = [];
      for (let i = 0; i < orgs.length; i += 10 * BATCH) out.push(...(await details(db, orgs.slice(i, i + 10 * BATCH))));
      return out;
    },

    /** Networks containing `ip`, most specific first, manual before imported at the same prefix length. */
    async networksContaining(ip: string): Promise<NetworkMatch[]> {
      const rows = await sql<{ id: number; org_id: number; org: string; network: string; text: string; abuse_mailbox: string | null; layer: Layer; source: string; prefix: number }>`
        SELECT n.id, n.org_id, o.name AS org, n.network::text AS network, n.text, n.abuse_mailbox, n.layer, n.source, masklen(n.network) AS prefix
        FROM constituency_networks n JOIN organisations o ON o.id = n.org_id
        WHERE n.network >>= ${ip}::inet
        ORDER BY masklen(n.network) DESC, (n.layer = 'manual') DESC, n.id`.execute(db);
      return rows.rows.map((r) => ({ id: r.id, orgId: r.org_id, org: r.org, network: r.network, text: r.text, abuseMailbox: r.abuse_mailbox, layer: r.layer, source: r.source, prefix: r.prefix }));
    },

    /** The trail newest first; `beforeId` continues below that row (keyset pages of a streamed download). */
    async audit(opts: { readonly org?: string; readonly limit?: number; readonly beforeId?: number } = {}): Promise<AuditRow[]> {
      let q = db.selectFrom('constituency_audit').selectAll().orderBy('id', 'desc').limit(opts.limit ?? 1000);
      if (opts.beforeId !== undefined) q = q.where('id', '<', opts.beforeId);
      if (opts.org !== undefined) {
        const o = await findOrg(db, opts.org);
        q = q.where('org_id', '=', o?.id ?? -1);
      }
      const rows = await q.execute();
      return rows.map((r) => ({ id: r.id, at: r.at.toISOString(), who: r.who, action: r.action, entity: r.entity, entityId: r.entity_id, orgId: r.org_id, source: r.source, before: r.before, after: r.after }));
    },

    async auditCount(): Promise<number> {
      const r = await db.selectFrom('constituency_audit').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
      return Number(r?.n ?? 0);
    },

    /** A manual organisation. @throws TOCSIN_ORG_EXISTS when the name is taken (case-insensitively). */
    async addOrg(name: string, attrs: OrgEdit, who: string): Promise<OrgRow> {
      return locked(async (trx) => {
        if ((await findOrg(trx, name)) !== null) throw new TocsinError('TOCSIN_ORG_EXISTS', `an organisation named ${JSON.stringify(name)} exists already (names are compared case-insensitively)`);
        const parent = attrs.parent == null ? null : await requireOrg(trx, attrs.parent);
        const row = await trx.insertInto('organisations').values({
          name, sector: attrs.sector ?? null, country: attrs.country ?? null, size: attrs.size ?? null, parent_id: parent?.id ?? null, layer: 'manual', source: MANUAL_SOURCE,
        }).returning('id').executeTakeFirstOrThrow();
        const org: OrgRow = { id: row.id, name, sector: attrs.sector ?? null, country: attrs.country ?? null, size: attrs.size ?? null, parent: parent?.name ?? null, layer: 'manual', source: MANUAL_SOURCE };
        await writeAudit(trx, who, [{ action: 'create', entity: 'organisation', entityId: org.id, orgId: org.id, source: MANUAL_SOURCE, before: null, after: orgJson(org) }]);
        return org;
      });
    },

    /**
     * A manual edit: the organisation becomes manual (an import never changes its attributes again, and never
     * removes it); its imported entries stay imported. A no-op edit changes and audits nothing.
     */
    async editOrg(name: string, edit: OrgEdit, who: string): Promise<{ before: OrgRow; after: OrgRow; changed: boolean }> {
      return locked(async (trx) => {
        const before = await requireOrg(trx, name);
        let parent: OrgRow | null = null;
        if (edit.parent !== undefined && edit.parent !== null) {
          parent = await requireOrg(trx, edit.parent);
          if (parent.id === before.id || (await makesCycle(trx, before.id, parent.id))) {
            throw new TocsinError('TOCSIN_ARG_INVALID', `${JSON.stringify(parent.name)} cannot be the parent of ${JSON.stringify(before.name)}: that would make a loop`);
          }
        }
        if (edit.name !== undefined && edit.name.toLowerCase() !== before.name.toLowerCase() && (await findOrg(trx, edit.name)) !== null) {
          throw new TocsinError('TOCSIN_ORG_EXISTS', `an organisation named ${JSON.stringify(edit.name)} exists already`);
        }
        const after: OrgRow = {
          ...before,
          name: edit.name ?? before.name,
          sector: edit.sector === undefined ? before.sector : edit.sector,
          country: edit.country === undefined ? before.country : edit.country,
          size: edit.size === undefined ? before.size : edit.size,
          parent: edit.parent === undefined ? before.parent : (parent?.name ?? null),
          layer: 'manual',
          source: before.layer === 'manual' ? before.source : MANUAL_SOURCE,
        };
        const same = after.name === before.name && after.sector === before.sector && after.country === before.country && after.size === before.size && after.parent === before.parent;
        if (same) return { before, after: before, changed: false };
        await trx.updateTable('organisations').set({
          name: after.name, sector: after.sector, country: after.country, size: after.size, layer: 'manual', source: after.source, updated_at: sql`now()`,
          ...(edit.parent === undefined ? {} : { parent_id: parent?.id ?? null }),
        }).where('id', '=', before.id).execute();
        await writeAudit(trx, who, [{ action: 'update', entity: 'organisation', entityId: before.id, orgId: before.id, source: MANUAL_SOURCE, before: orgJson(before), after: orgJson(after) }]);
        return { before, after, changed: true };
      });
    },

    /** Removes an organisation with all its entries (every layer); each removal is audited. */
    async removeOrg(name: string, who: string): Promise<OrgDetail> {
      return locked(async (trx) => {
        const org = await detail(trx, await requireOrg(trx, name));
        const entries: AuditEntry[] = [];
        const child = (entity: Entity, r: Provenance, json: Json): void => {
          entries.push({ action: 'delete', entity, entityId: r.id, orgId: org.id, source: MANUAL_SOURCE, before: json, after: null });
        };
        for (const n of org.networks) child('network', n, { org: org.name, network: n.network, text: n.text, layer: n.layer, source: n.source });
        for (const a of org.asns) child('asn', a, { org: org.name, asn: formatAsn(a.asn), layer: a.layer, source: a.source });
        for (const d of org.domains) child('domain', d, { org: org.name, domain: d.domain, layer: d.layer, source: d.source });
        for (const c of org.contacts) child('contact', c, { org: org.name, role: c.role, email: c.email, layer: c.layer, source: c.source });
        for (const o of org.optOuts) child('opt-out', o, { org: org.name, condition: o.condition, expiresAt: o.expiresAt, layer: o.layer, source: o.source });
        entries.push({ action: 'delete', entity: 'organisation', entityId: org.id, orgId: org.id, source: MANUAL_SOURCE, before: orgJson(org), after: null });
        await trx.deleteFrom('organisations').where('id', '=', org.id).execute();
        await writeAudit(trx, who, entries);
        return org;
      });
    },

    /** Adds a manual entry; false when the same manual entry exists already (nothing changed, nothing audited). */
    async addEntry(orgName: string, e: ManualEntry, who: string): Promise<boolean> {
      return locked(async (trx) => {
        const org = await requireOrg(trx, orgName);
        const audits: AuditEntry[] = [];
        if (e.kind === 'opt-out') {
          const row = await trx.insertInto('constituency_opt_outs').values({ org_id: org.id, condition: e.condition, expires_at: e.expiresAt, layer: 'manual', source: MANUAL_SOURCE })
            .onConflict((oc) => oc.doNothing()).returning('id').executeTakeFirst();
          if (row !== undefined) audits.push({ action: 'create', entity: 'opt-out', entityId: row.id, orgId: org.id, source: MANUAL_SOURCE, before: null, after: { org: org.name, condition: e.condition, expiresAt: e.expiresAt, layer: 'manual', source: MANUAL_SOURCE } });
        } else {
          for (const [key, value] of entryItems(e)) {
            const id = await insertItem(trx, org.id, e.kind, key, value, 'manual', MANUAL_SOURCE);
            if (id !== null) audits.push({ action: 'create', entity: e.kind, entityId: id, orgId: org.id, source: MANUAL_SOURCE, before: null, after: itemJson(org.name, e.kind, key, value, 'manual', MANUAL_SOURCE) });
          }
        }
        await writeAudit(trx, who, audits);
        return audits.length > 0;
      });
    },

    /**
     * Removes an entry of any layer (a removed imported entry comes back with its source's next import; a manual
     * entry is the way to override an import for good). Returns how many rows went.
     * @throws TOCSIN_ORG_ENTRY_NOT_FOUND when the organisation has no such entry.
     */
    async removeEntry(orgName: string, e: ManualEntry, who: string): Promise<number> {
      return locked(async (trx) => {
        const org = await requireOrg(trx, orgName);
        const d = await detail(trx, org);
        const audits: AuditEntry[] = [];
        const gone = (entity: Entity, r: Provenance, json: Json): void => {
          audits.push({ action: 'delete', entity, entityId: r.id, orgId: org.id, source: MANUAL_SOURCE, before: json, after: null });
        };
        if (e.kind === 'network') {
          const want = new Set(e.cidrs);
          for (const n of d.networks) {
            const c = checkNetwork(n.network);
            if (c.ok && want.has(c.value.cidrs[0] ?? '')) {
              await deleteItem(trx, 'network', n.id);
              gone('network', n, { org: org.name, network: n.network, text: n.text, layer: n.layer, source: n.source });
            }
          }
        } else if (e.kind === 'asn') {
          for (const a of d.asns.filter((x) => x.asn === e.asn)) {
            await deleteItem(trx, 'asn', a.id);
            gone('asn', a, { org: org.name, asn: formatAsn(a.asn), layer: a.layer, source: a.source });
          }
        } else if (e.kind === 'domain') {
          for (const x of d.domains.filter((y) => y.domain === e.domain)) {
            await deleteItem(trx, 'domain', x.id);
            gone('domain', x, { org: org.name, domain: x.domain, layer: x.layer, source: x.source });
          }
        } else if (e.kind === 'contact') {
          for (const c of d.contacts.filter((y) => y.email.toLowerCase() === e.email.toLowerCase() && y.role === e.role)) {
            await deleteItem(trx, 'contact', c.id);
            gone('contact', c, { org: org.name, role: c.role, email: c.email, language: c.language, pgp: c.pgp, layer: c.layer, source: c.source });
          }
        } else {
          for (const o of d.optOuts.filter((y) => y.condition === e.condition)) {
            await trx.deleteFrom('constituency_opt_outs').where('id', '=', o.id).execute();
            gone('opt-out', o, { org: org.name, condition: o.condition, expiresAt: o.expiresAt, layer: o.layer, source: o.source });
          }
        }
        if (audits.length === 0) throw new TocsinError('TOCSIN_ORG_ENTRY_NOT_FOUND', `${JSON.stringify(org.name)} has no such ${e.kind}`);
        await writeAudit(trx, who, audits);
        return audits.length;
      });
    },
  };

  function entryItems(e: Exclude<ManualEntry, { kind: 'opt-out' }>): [string, ItemValue][] {
    if (e.kind === 'network') return e.cidrs.map((c) => [c, { text: e.text, abuseMailbox: null }]);
    if (e.kind === 'asn') return [[String(e.asn), {}]];
    if (e.kind === 'domain') return [[e.domain, {}]];
    return [[contactKey(e.role, e.email), { email: e.email, language: e.language, pgp: e.pgp }]];
  }

  async function detail(trx: Db, o: OrgRow): Promise<OrgDetail> {
    return (await details(trx, [o]))[0] as OrgDetail;
  }

  /** Organisations with their entries: five queries whatever the number of organisations (export reads them all). */
  async function details(trx: Db, orgs: readonly OrgRow[]): Promise<OrgDetail[]> {
    const ids = orgs.map((o) => o.id);
    const of = sql<boolean>`org_id = ANY(${ids}::bigint[])`;
    const networks = await trx.selectFrom('constituency_networks').select(['org_id', 'id', sql<string>`network::text`.as('network'), 'text', 'abuse_mailbox', 'layer', 'source'])
      .where(of).orderBy(sql`family(constituency_networks.network)`).orderBy(sql`constituency_networks.network`).orderBy('layer', 'desc').execute();
    const asns = await trx.selectFrom('constituency_asns').select(['org_id', 'id', 'asn', 'layer', 'source']).where(of).orderBy('asn').orderBy('layer', 'desc').execute();
    const domains = await trx.selectFrom('constituency_domains').select(['org_id', 'id', 'domain', 'layer', 'source']).where(of).orderBy('domain').orderBy('layer', 'desc').execute();
    const contacts = await trx.selectFrom('constituency_contacts').select(['org_id', 'id', 'role', 'email', 'language', 'pgp', 'layer', 'source']).where(of)
      .orderBy('role').orderBy(sql`lower(email)`).orderBy('layer', 'desc').execute();
    const optOuts = await trx.selectFrom('constituency_opt_outs').select(['org_id', 'id', 'condition', 'expires_at', 'layer', 'source']).where(of).orderBy('condition').execute();
    const group = <R extends { org_id: number }, T>(rows: readonly R[], map: (r: R) => T): Map<number, T[]> => {
      const m = new Map<number, T[]>();
      for (const r of rows) {
        const list = m.get(r.org_id);
        if (list === undefined) m.set(r.org_id, [map(r)]);
        else list.push(map(r));
      }
      return m;
    };
    const n = group(networks, (x): NetworkRow => ({ id: x.id, network: x.network, text: x.text, abuseMailbox: x.abuse_mailbox, layer: x.layer, source: x.source }));
    const a = group(asns, (x): AsnRow => ({ id: x.id, asn: x.asn, layer: x.layer, source: x.source }));
    const d = group(domains, (x): DomainRow => ({ id: x.id, domain: x.domain, layer: x.layer, source: x.source }));
    const c = group(contacts, (x): ContactRow => ({ id: x.id, role: x.role, email: x.email, language: x.language, pgp: x.pgp, layer: x.layer, source: x.source }));
    const oo = group(optOuts, (x): OptOutRow => ({ id: x.id, condition: x.condition, expiresAt: x.expires_at === null ? null : x.expires_at.toISOString(), layer: x.layer, source: x.source }));
    return orgs.map((o) => ({
      id: o.id, name: o.name, sector: o.sector, country: o.country, size: o.size, parent: o.parent, layer: o.layer, source: o.source,
      networks: n.get(o.id) ?? [], asns: a.get(o.id) ?? [], domains: d.get(o.id) ?? [], contacts: c.get(o.id) ?? [], optOuts: oo.get(o.id) ?? [],
    }));
  }

  /**
   * Applies an import plan in set-based statements (a 10,000-organisation file is a few dozen statements, not
   * 60,000): organisations in batches, parents resolved in memory (a parent that would close a loop is left
   * unset), item deletes by id list, inserts in batches matched back to their keys for the audit.
   */
  async function applyPlan(trx: Transaction<DbSchema>, p: ImportPlan, orgs: readonly CurrentOrg[], who: string): Promise<AppliedImport> {
    const src = p.source;
    const audits: AuditEntry[] = [];
    const idByName = new Map(orgs.map((o) => [o.name.toLowerCase(), o.id]));
    const nameById = new Map(orgs.map((o) => [o.id, o.name]));
    const parentById = new Map(orgs.map((o) => [o.id, o.parentId]));
    for (let i = 0; i < p.createOrgs.length; i += BATCH) {
      const chunk = p.createOrgs.slice(i, i + BATCH);
      const rows = await trx.insertInto('organisations')
        .values(chunk.map((c) => ({ name: c.name, sector: c.attrs.sector, country: c.attrs.country, size: c.attrs.size, layer: 'imported' as const, source: src })))
        .returning(['id', 'name']).execute();
      for (const r of rows) {
        idByName.set(r.name.toLowerCase(), r.id);
        nameById.set(r.id, r.name);
        parentById.set(r.id, null);
      }
    }
    /** The parent id to set, or null when there is none or it would close a loop (walked in memory). */
    const resolveParent = (id: number, lower: string | null): number | null => {
      const parentId = lower === null ? null : (idByName.get(lower) ?? null);
      if (parentId === null) return null;
      for (let cur: number | null = parentId, steps = 0; cur !== null && steps <= parentById.size; cur = parentById.get(cur) ?? null, steps++) {
        if (cur === id) return null;
      }
      parentById.set(id, parentId);
      return parentId;
    };
    const parentSets: { id: number; parent: number }[] = [];
    for (const c of p.createOrgs) {
      const id = idByName.get(c.name.toLowerCase()) as number;
      const parentId = resolveParent(id, c.attrs.parent);
      if (parentId !== null) parentSets.push({ id, parent: parentId });
      audits.push({ action: 'create', entity: 'organisation', entityId: id, orgId: id, source: src, before: null,
        after: orgJson({ ...c.attrs, name: c.name, parent: parentId === null ? null : (nameById.get(parentId) ?? null), layer: 'imported', source: src }) });
    }
    for (let i = 0; i < parentSets.length; i += BATCH) {
      const chunk = parentSets.slice(i, i + BATCH);
      await sql`UPDATE organisations o SET parent_id = v.p FROM unnest(${chunk.map((c) => c.id)}::bigint[], ${chunk.map((c) => c.parent)}::bigint[]) AS v(id, p) WHERE o.id = v.id`.execute(trx);
    }
    for (const u of p.updateOrgs) {
      const beforeParent = u.org.parentId === null ? null : (nameById.get(u.org.parentId) ?? null);
      parentById.set(u.org.id, null);
      const parentId = resolveParent(u.org.id, u.attrs.parent);
      await trx.updateTable('organisations').set({ sector: u.attrs.sector, country: u.attrs.country, size: u.attrs.size, parent_id: parentId, updated_at: sql`now()` })
        .where('id', '=', u.org.id).execute();
      audits.push({ action: 'update', entity: 'organisation', entityId: u.org.id, orgId: u.org.id, source: src, before: orgJson({ ...u.org, parent: beforeParent }),
        after: orgJson({ ...u.attrs, name: u.org.name, parent: parentId === null ? null : (nameById.get(parentId) ?? null), layer: 'imported', source: src }) });
    }
    for (const kind of ['network', 'asn', 'domain', 'contact'] as const) {
      const ids = p.deleteItems.filter((it) => it.kind === kind).map((it) => it.id);
      for (let i = 0; i < ids.length; i += 10 * BATCH) {
        await sql`DELETE FROM ${sql.table(TABLE[kind])} WHERE id = ANY(${ids.slice(i, i + 10 * BATCH)}::bigint[])`.execute(trx);
      }
    }
    for (const it of p.deleteItems) {
      audits.push({ action: 'delete', entity: it.kind, entityId: it.id, orgId: it.orgId, source: src, before: itemJson(nameById.get(it.orgId) ?? '', it.kind, it.key, it.value, 'imported', src), after: null });
    }
    for (const u of p.updateItems) {
      await updateItem(trx, u.current.kind, u.current.id, u.value);
      const org = nameById.get(u.current.orgId) ?? '';
      audits.push({ action: 'update', entity: u.current.kind, entityId: u.current.id, orgId: u.current.orgId, source: src,
        before: itemJson(org, u.current.kind, u.current.key, u.current.value, 'imported', src), after: itemJson(org, u.current.kind, u.current.key, u.value, 'imported', src) });
    }
    let added = 0;
    for (const kind of ['network', 'asn', 'domain', 'contact'] as const) {
      const items = p.insertItems.flatMap((it) => {
        const orgId = idByName.get(it.org);
        return it.kind === kind && orgId !== undefined ? [{ ...it, orgId }] : [];
      });
      for (let i = 0; i < items.length; i += 5 * BATCH) {
        const chunk = items.slice(i, i + 5 * BATCH);
        const ids = await insertItems(trx, kind, chunk, src);
        for (const it of chunk) {
          const id = ids.get(`${it.orgId}|${it.key}`);
          if (id === undefined) continue; // there already (a race the lock rules out; kept safe anyway)
          added++;
          audits.push({ action: 'create', entity: kind, entityId: id, orgId: it.orgId, source: src, before: null, after: itemJson(nameById.get(it.orgId) ?? '', kind, it.key, it.value, 'imported', src) });
        }
      }
    }
    // This source's organisations that left its files go, unless entries of another layer or source hang on them.
    const gone = new Set<number>();
    const candidates = p.deleteOrgs.map((o) => o.id);
    for (let i = 0; i < candidates.length; i += 10 * BATCH) {
      const r = await sql<{ id: number }>`
        DELETE FROM organisations o WHERE o.id = ANY(${candidates.slice(i, i + 10 * BATCH)}::bigint[])
          AND NOT EXISTS (SELECT 1 FROM constituency_networks x WHERE x.org_id = o.id)
          AND NOT EXISTS (SELECT 1 FROM constituency_asns x WHERE x.org_id = o.id)
          AND NOT EXISTS (SELECT 1 FROM constituency_domains x WHERE x.org_id = o.id)
          AND NOT EXISTS (SELECT 1 FROM constituency_contacts x WHERE x.org_id = o.id)
          AND NOT EXISTS (SELECT 1 FROM constituency_opt_outs x WHERE x.org_id = o.id)
        RETURNING o.id`.execute(trx);
      for (const row of r.rows) gone.add(row.id);
    }
    const kept: string[] = [];
    for (const o of p.deleteOrgs) {
      if (!gone.has(o.id)) {
        kept.push(o.name);
        continue;
      }
      audits.push({ action: 'delete', entity: 'organisation', entityId: o.id, orgId: o.id, source: src,
        before: orgJson({ ...o, parent: o.parentId === null ? null : (nameById.get(o.parentId) ?? null) }), after: null });
    }
    const removed = gone.size;
    await writeAudit(trx, who, audits);
    return {
      orgsCreated: p.createOrgs.length,
      orgsUpdated: p.updateOrgs.length,
      orgsRemoved: removed,
      orgsKept: kept,
      entriesAdded: added,
      entriesChanged: p.updateItems.length,
      entriesRemoved: p.deleteItems.length,
    };
  }

  /** Inserts imported items of one kind (unnest: one parameter per column); returns "orgId|key" → id of the rows inserted. */
  async function insertItems(trx: Db, kind: ItemKind, items: readonly (DesiredItem & { orgId: number })[], source: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const str = (v: ItemValue, k: string): string | null => (typeof v[k] === 'string' ? (v[k] as string) : null);
    const orgIds = items.map((it) => it.orgId);
    if (kind === 'network') {
      const rows = await sql<{ id: number; org_id: number; network: string }>`
        INSERT INTO constituency_networks (org_id, network, text, abuse_mailbox, layer, source)
        SELECT o, n::cidr, t, m, 'imported', ${source}
        FROM unnest(${orgIds}::bigint[], ${items.map((it) => it.key)}::text[], ${items.map((it) => str(it.value, 'text') ?? it.key)}::text[],
                    ${items.map((it) => str(it.value, 'abuseMailbox'))}::text[]) AS v(o, n, t, m)
        ON CONFLICT DO NOTHING RETURNING id, org_id, network::text AS network`.execute(trx);
      for (const r of rows.rows) {
        const c = checkNetwork(r.network);
        out.set(`${r.org_id}|${c.ok ? (c.value.cidrs[0] ?? r.network) : r.network}`, r.id);
      }
    } else if (kind === 'asn') {
      const rows = await sql<{ id: number; org_id: number; asn: number }>`
        INSERT INTO constituency_asns (org_id, asn, layer, source)
        SELECT o, a, 'imported', ${source} FROM unnest(${orgIds}::bigint[], ${items.map((it) => Number(it.key))}::bigint[]) AS v(o, a)
        ON CONFLICT DO NOTHING RETURNING id, org_id, asn`.execute(trx);
      for (const r of rows.rows) out.set(`${r.org_id}|${r.asn}`, r.id);
    } else if (kind === 'domain') {
      const rows = await sql<{ id: number; org_id: number; domain: string }>`
        INSERT INTO constituency_domains (org_id, domain, layer, source)
        SELECT o, d, 'imported', ${source} FROM unnest(${orgIds}::bigint[], ${items.map((it) => it.key)}::text[]) AS v(o, d)
        ON CONFLICT DO NOTHING RETURNING id, org_id, domain`.execute(trx);
      for (const r of rows.rows) out.set(`${r.org_id}|${r.domain}`, r.id);
    } else {
      const rows = await sql<{ id: number; org_id: number; role: string; email: string }>`
        INSERT INTO constituency_contacts (org_id, role, email, language, pgp, layer, source)
        SELECT o, r, e, l, k, 'imported', ${source}
        FROM unnest(${orgIds}::bigint[], ${items.map((it) => it.key.split('|')[0] ?? '')}::text[], ${items.map((it) => str(it.value, 'email') ?? '')}::text[],
                    ${items.map((it) => str(it.value, 'language'))}::text[], ${items.map((it) => str(it.value, 'pgp'))}::text[]) AS v(o, r, e, l, k)
        ON CONFLICT DO NOTHING RETURNING id, org_id, role, email`.execute(trx);
      for (const r of rows.rows) out.set(`${r.org_id}|${contactKey(r.role, r.email)}`, r.id);
    }
    return out;
  }
}

export type ConstituencyStore = ReturnType<typeof createConstituencyStore>;
