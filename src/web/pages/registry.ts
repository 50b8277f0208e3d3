/**
 * The constituency registry editor (issue 10 §3), for CERT staff: `/registry` (a paged list with a GET filter form),
 * `/registry/new`, and `/registry/:id` (the organisation's fields, one add form per entry kind, a remove button per
 * entry, an edit form per contact, and the registry's change trail). Changes go through the JSON API
 * (src/web/routes/registry.ts) by app.js's data-api forms, so a page never writes anything itself.
 *
 * Stable hooks for the browser tests: `data-form="..."` on every form, `data-org` on list rows, and on detail rows
 * `data-network`, `data-asn`, `data-domain`, `data-contact` (the e-mail) with `data-role`, `data-opt-out`.
 * Every value from the registry is hostile text: it reaches the page only through the `html` tag.
 */
import type { FastifyRequest } from 'fastify';
import { findOrg, orgHistory, orgPage, type AuditRow, type OrgDetail } from '../../services/registry-web.js';
import { html, path, type SafeHtml } from '../html.js';
import type { PageModule } from '../page.js';

const PAGE_SIZE = 50;

/** A GET parameter as one string (repeated or missing: the first or ''). */
export function queryParam(req: FastifyRequest, name: string): string {
  const q = req.query as Record<string, unknown> | undefined;
  const v = q?.[name];
  const first = Array.isArray(v) ? (v as unknown[])[0] : v;
  return typeof first === 'string' ? first.slice(0, 200) : '';
}

export function offsetParam(req: FastifyRequest): number {
  const raw = queryParam(req, 'offset');
  return /^\d{1,7}$/.test(raw) ? Number(raw) : 0;
}

/** A same-site link to `base` with these GET parameters (empty ones left out). */
export function withQuery(base: string, params: Readonly<Record<string, string | number>>): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== 0) qs.set(k, String(v));
  const s = qs.toString();
  return s === '' ? base : `${base}?${s}`;
}

const dash = (v: string | null): string => v ?? '–';
const layerOf = (p: { layer: string; source: string }): SafeHtml => (p.layer === 'manual' ? html`<span class="tag">manual</span>` : html`<span class="tag">imported: ${p.source}</span>`);

function removeForm(orgId: number, kind: string, params: Readonly<Record<string, string>>, label: string): SafeHtml {
  const api = withQuery(path`/api/orgs/${orgId}/entries`, { kind, ...params });
  return html`<form data-form="remove-${kind}" data-api="${api}" data-method="DELETE" data-confirm="${`Remove ${label}?`}"><button type="submit" class="secondary">Remove</button></form>`;
}

function listPage(o: Awaited<ReturnType<typeof orgPage>>, q: string, sector: string): SafeHtml {
  const link = (offset: number): string => withQuery('/registry', { q, sector, offset });
  return html`<h1>Constituency registry</h1>
<p><a href="/registry/new" data-link="new-org">Add an organisation</a></p>
<form method="get" action="/registry" class="filters" data-form="filter-orgs">
<div><label for="f-q">Name contains</label><input id="f-q" name="q" value="${q}"></div>
<div><label for="f-sector">Sector</label><select id="f-sector" name="sector"><option value="">any</option>${o.sectors.map((s) => html`<option value="${s}"${s.toLowerCase() === sector.toLowerCase() ? html` selected` : ''}>${s}</option>`)}</select></div>
<div><button type="submit">Filter</button></div>
</form>
<p data-downloads="orgs">Every matching organisation: <a href="${withQuery('/api/orgs', { q, sector, format: 'csv' })}" download data-download="csv">Download CSV</a> · <a href="${withQuery('/api/orgs', { q, sector, format: 'jsonl' })}" download data-download="jsonl">Download JSONL</a></p>
<p class="muted" data-total="${o.total}">${o.total} organisation(s)${o.total > 0 ? html`, ${o.offset + 1}–${o.offset + o.items.length} shown` : ''}</p>
<table data-table="orgs"><thead><tr><th>Organisation</th><th>Sector</th><th>Country</th><th>Parent</th><th>Layer</th><th class="num">Networks</th><th class="num">ASNs</th><th class="num">Domains</th><th class="num">Contacts</th></tr></thead>
<tbody>${o.items.map((r) => html`<tr data-org="${r.name}" data-org-id="${r.id}"><td><a href="${path`/registry/${r.id}`}">${r.name}</a></td><td>${dash(r.sector)}</td><td>${dash(r.country)}</td><td>${dash(r.parent)}</td><td>${layerOf(r)}</td>
<td class="num">${r.networks}</td><td class="num">${r.asns}</td><td class="num">${r.domains}</td><td class="num">${r.contacts}</td></tr>`)}</tbody></table>
<nav class="pager">${o.offset > 0 ? html`<a href="${link(Math.max(0, o.offset - PAGE_SIZE))}" rel="prev">Previous</a>` : ''}${o.nextOffset === null ? '' : html`<a href="${link(o.nextOffset)}" rel="next">Next</a>`}</nav>`;
}

const NEW_ORG = html`<h1>Add an organisation</h1>
<form data-form="new-org" data-api="/api/orgs" data-method="POST" data-redirect="/registry/{id}">
<label for="n-name">Name</label><input id="n-name" name="name" required maxlength="200">
<label for="n-sector">Sector</label><input id="n-sector" name="sector" maxlength="100" placeholder="e.g. health, energy, government">
<label for="n-country">Country</label><input id="n-country" name="country" maxlength="2" placeholder="ISO code, e.g. DE">
<label for="n-size">Size</label><input id="n-size" name="size" maxlength="40">
<label for="n-parent">Parent organisation</label><input id="n-parent" name="parent" maxlength="200">
<p><button type="submit">Add</button></p>
</form>
<p class="muted">It is added by hand (the manual layer): imports never change or remove it.</p>`;

const ROLES = ['security', 'abuse', 'technical'] as const;

function roleSelect(id: string, name: string, selected: string | null): SafeHtml {
  return html`<select id="${id}" name="${name}">${ROLES.map((r) => html`<option value="${r}"${r === selected ? html` selected` : ''}>${r}</option>`)}</select>`;
}

/** A short account of what an audit row changed (the fields that differ), as text. */
function auditSummary(r: AuditRow): string {
  const obj = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
  const before = obj(r.before);
  const after = obj(r.after);
  const shown = (v: unknown): string => (v === null || v === undefined ? '–' : typeof v === 'string' ? v : JSON.stringify(v));
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => k !== 'org' && k !== 'layer' && k !== 'source');
  if (r.action === 'update') return keys.filter((k) => shown(before[k]) !== shown(after[k])).map((k) => `${k}: ${shown(before[k])} → ${shown(after[k])}`).join('; ');
  const v = r.action === 'create' ? after : before;
  return keys.filter((k) => v[k] !== null && v[k] !== undefined).map((k) => `${k}: ${shown(v[k])}`).join('; ');
}

function detailPage(o: OrgDetail, history: readonly AuditRow[]): SafeHtml {
  const api = path`/api/orgs/${o.id}`;
  const entries = path`/api/orgs/${o.id}/entries`;
  const keep = html` data-keep-empty`;
  return html`<h1 data-org="${o.name}" data-org-id="${o.id}">${o.name}</h1>
<p class="muted">${o.layer === 'manual' ? 'Manual organisation.' : html`Imported from ${o.source}: saving these fields makes it manual (imports then no longer change it).`} <a href="/registry">Back to the registry</a></p>

<h2>Organisation</h2>
<form data-form="edit-org" data-api="${api}" data-method="PATCH" data-redirect="/registry/{id}">
<label for="e-name">Name</label><input id="e-name" name="name" value="${o.name}" required maxlength="200">
<label for="e-sector">Sector</label><input id="e-sector" name="sector" value="${o.sector ?? ''}" maxlength="100"${keep}>
<label for="e-country">Country</label><input id="e-country" name="country" value="${o.country ?? ''}" maxlength="2"${keep}>
<label for="e-size">Size</label><input id="e-size" name="size" value="${o.size ?? ''}" maxlength="40"${keep}>
<label for="e-parent">Parent organisation</label><input id="e-parent" name="parent" value="${o.parent ?? ''}" maxlength="200"${keep}>
<p><button type="submit">Save</button></p>
</form>

<h2>Networks (${o.networks.length})</h2>
<table data-table="networks"><thead><tr><th>Network</th><th>Given as</th><th>Abuse mailbox</th><th>Layer</th><th></th></tr></thead>
<tbody>${o.networks.map((n) => html`<tr data-network="${n.network}"><td class="mono">${n.network}</td><td>${n.text === n.network ? '' : n.text}</td><td>${dash(n.abuseMailbox)}</td><td>${layerOf(n)}</td>
<td>${removeForm(o.id, 'network', { value: n.network }, `network ${n.network}`)}</td></tr>`)}</tbody></table>
<form data-form="add-network" data-api="${entries}" data-method="POST" class="filters"><input type="hidden" name="kind" value="network">
<div><label for="a-network">Add a network</label><input id="a-network" name="value" required maxlength="200" placeholder="CIDR, address or a - b"></div><div><button type="submit">Add</button></div></form>

<h2>ASNs (${o.asns.length})</h2>
<table data-table="asns"><thead><tr><th>ASN</th><th>Layer</th><th></th></tr></thead>
<tbody>${o.asns.map((a) => html`<tr data-asn="${`AS${a.asn}`}"><td>AS${a.asn}</td><td>${layerOf(a)}</td><td>${removeForm(o.id, 'asn', { value: String(a.asn) }, `AS${a.asn}`)}</td></tr>`)}</tbody></table>
<form data-form="add-asn" data-api="${entries}" data-method="POST" class="filters"><input type="hidden" name="kind" value="asn">
<div><label for="a-asn">Add an ASN</label><input id="a-asn" name="value" required maxlength="20" placeholder="AS64496"></div><div><button type="submit">Add</button></div></form>

<h2>Domains (${o.domains.length})</h2>
<table data-table="domains"><thead><tr><th>Domain (and its sub-domains)</th><th>Layer</th><th></th></tr></thead>
<tbody>${o.domains.map((d) => html`<tr data-domain="${d.domain}"><td>${d.domain}</td><td>${layerOf(d)}</td><td>${removeForm(o.id, 'domain', { value: d.domain }, `domain ${d.domain}`)}</td></tr>`)}</tbody></table>
<form data-form="add-domain" data-api="${entries}" data-method="POST" class="filters"><input type="hidden" name="kind" value="domain">
<div><label for="a-domain">Add a domain</label><input id="a-domain" name="value" required maxlength="200" placeholder="example.org"></div><div><button type="submit">Add</button></div></form>

<h2>Contacts (${o.contacts.length})</h2>
<table data-table="contacts"><thead><tr><th>E-mail</th><th>Role</th><th>Language</th><th>OpenPGP</th><th>Layer</th><th>Edit</th><th></th></tr></thead>
<tbody>${o.contacts.map((c, i) => html`<tr data-contact="${c.email}" data-role="${c.role}"><td>${c.email}</td><td>${c.role}</td><td>${dash(c.language)}</td><td class="mono">${dash(c.pgp)}</td><td>${layerOf(c)}</td>
<td><form data-form="edit-contact" data-api="${path`/api/orgs/${o.id}/contacts`}" data-method="PATCH" class="filters">
<input type="hidden" name="role" value="${c.role}"><input type="hidden" name="email" value="${c.email}">
<div><label for="${`c${i}-role`}">Role</label>${roleSelect(`c${i}-role`, 'set.role', c.role)}</div>
<div><label for="${`c${i}-email`}">E-mail</label><input id="${`c${i}-email`}" name="set.email" value="${c.email}" required maxlength="254"></div>
<div><label for="${`c${i}-lang`}">Language</label><input id="${`c${i}-lang`}" name="set.language" value="${c.language ?? ''}" maxlength="35" size="6"${keep}></div>
<div><label for="${`c${i}-pgp`}">OpenPGP</label><input id="${`c${i}-pgp`}" name="set.pgp" value="${c.pgp ?? ''}" maxlength="100"${keep}></div>
<div><button type="submit">Save</button></div></form></td>
<td>${removeForm(o.id, 'contact', { role: c.role, email: c.email }, `contact ${c.email} (${c.role})`)}</td></tr>`)}</tbody></table>
<form data-form="add-contact" data-api="${entries}" data-method="POST" class="filters"><input type="hidden" name="kind" value="contact">
<div><label for="a-c-role">Role</label>${roleSelect('a-c-role', 'role', 'security')}</div>
<div><label for="a-c-email">E-mail</label><input id="a-c-email" name="email" type="email" required maxlength="254"></div>
<div><label for="a-c-lang">Language</label><input id="a-c-lang" name="language" maxlength="35" size="6" placeholder="en"></div>
<div><label for="a-c-pgp">OpenPGP fingerprint</label><input id="a-c-pgp" name="pgp" maxlength="100"></div>
<div><button type="submit">Add contact</button></div></form>

<h2>Opt-outs (${o.optOuts.length})</h2>
<table data-table="opt-outs"><thead><tr><th>Condition</th><th>Until</th><th>Layer</th><th></th></tr></thead>
<tbody>${o.optOuts.map((x) => html`<tr data-opt-out="${x.condition}"><td>${x.condition}</td><td>${x.expiresAt ?? 'removed'}</td><td>${layerOf(x)}</td>
<td>${removeForm(o.id, 'opt-out', { condition: x.condition }, `opt-out ${x.condition}`)}</td></tr>`)}</tbody></table>
<form data-form="add-opt-out" data-api="${entries}" data-method="POST" class="filters"><input type="hidden" name="kind" value="opt-out">
<div><label for="a-o-cond">Condition</label><input id="a-o-cond" name="condition" required maxlength="200" placeholder="all, cve:CVE-2021-26855, source:shadowserver"></div>
<div><label for="a-o-exp">Expires</label><input id="a-o-exp" name="expires" required maxlength="40" value="never" placeholder="YYYY-MM-DD or never"></div>
<div><button type="submit">Add opt-out</button></div></form>

<h2>Changes</h2>
<p data-downloads="history">The whole trail: <a href="${withQuery(path`/api/orgs/${o.id}/audit`, { format: 'csv' })}" download data-download="csv">Download CSV</a> · <a href="${withQuery(path`/api/orgs/${o.id}/audit`, { format: 'jsonl' })}" download data-download="jsonl">Download JSONL</a></p>
<table data-table="history"><thead><tr><th>When</th><th>Who</th><th>What</th><th>Details</th></tr></thead>
<tbody>${history.map((r) => html`<tr data-audit="${r.id}"><td>${r.at.slice(0, 19).replace('T', ' ')}</td><td>${r.who}</td><td>${r.action} ${r.entity}</td><td>${auditSummary(r)}</td></tr>`)}</tbody></table>`;
}

export const registryPages: PageModule = ({ db }) => [
  {
    url: '/registry',
    audience: 'staff',
    audit: true,
    render: async ({ req }) => {
      const q = queryParam(req, 'q');
      const sector = queryParam(req, 'sector');
      const page = await orgPage(db, { q, sector, offset: offsetParam(req), limit: PAGE_SIZE });
      return { title: 'Constituency registry', body: listPage(page, q, sector) };
    },
  },
  {
    url: '/registry/new',
    audience: 'staff',
    render: async () => ({ title: 'Add an organisation', body: NEW_ORG }),
  },
  {
    url: '/registry/:id',
    audience: 'staff',
    audit: true,
    render: async ({ req }) => {
      const ref = (req.params as { id?: string }).id ?? '';
      const o = await findOrg(db, ref.slice(0, 200));
      req.orgScope = o.id;
      const { rows } = await orgHistory(db, String(o.id), 50);
      return { title: o.name, body: detailPage(o, rows) };
    },
  },
];
