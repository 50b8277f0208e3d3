/**
 * `/review`: the attribution review queue (issue 10 §3) for CERT staff, refreshed on every view as `tocsin
 * attribution review` does: observed addresses no rule attributes, then ties, each with an assign form
 * (`<tr data-ip="IP">`, `<form data-form="assign">`) posting to POST /api/attribution/assign, plus one form to
 * assign any address or network and one to remove a manual assignment. Hostnames, names and candidates' reasons
 * come from scanned hosts, feeds and the registry: hostile text, shown only through the `html` tag.
 */
import { orgPage, reviewPage, type ReviewItem } from '../../services/registry-web.js';
import { html, type SafeHtml } from '../html.js';
import type { PageModule } from '../page.js';
import { offsetParam, withQuery } from './registry.js';

const PAGE_SIZE = 50;

function candidates(r: ReviewItem): SafeHtml {
  if (r.candidates.length === 0) return html`<span class="muted">none</span>`;
  return html`<ul>${r.candidates.map((c) => html`<li>${c.org ?? `#${c.orgId ?? '?'}`} by ${c.rule ?? '?'}${c.confidence === null ? '' : ` (${c.confidence.toFixed(2)})`}${c.lost === null ? '' : html`: <span class="muted">${c.lost}</span>`}</li>`)}</ul>`;
}

function row(r: ReviewItem): SafeHtml {
  return html`<tr data-ip="${r.ip}" data-kind="${r.kind}"><td class="mono">${r.ip}</td>
<td>${r.kind === 'ambiguous' ? html`tie: ${r.org ?? ''}` : 'unattributed'}</td>
<td>${r.ports.join(', ') || '–'}</td><td>${r.hostnames.map((h) => html`<span class="tag">${h}</span>`)}</td>
<td>${r.feedAsn === null ? '–' : `AS${r.feedAsn}`}</td><td>${r.firstSeen?.slice(0, 10) ?? '–'}</td><td>${r.lastSeen?.slice(0, 10) ?? '–'}</td>
<td>${candidates(r)}</td>
<td><form data-form="assign" data-api="/api/attribution/assign" data-method="POST" class="filters">
<input type="hidden" name="target" value="${r.ip}">
<div><label>Organisation <input name="org" list="org-names" required maxlength="200" value="${r.kind === 'ambiguous' ? (r.org ?? '') : ''}"></label></div>
<div><label>Note <input name="note" maxlength="1000"></label></div>
<div><button type="submit">Assign</button></div></form></td></tr>`;
}

export const reviewPages: PageModule = ({ db }) => [
  {
    url: '/review',
    audience: 'staff',
    audit: true,
    render: async ({ req }) => {
      const offset = offsetParam(req);
      const page = await reviewPage(db, { offset, limit: PAGE_SIZE });
      // The datalist only helps typing: any organisation's name is accepted.
      const names = await orgPage(db, { limit: 500 });
      const s = page.refresh;
      const body = html`<h1>Attribution review</h1>
<p data-downloads="review">The whole queue: <a href="/api/attribution/review?format=csv" download data-download="csv">Download CSV</a> · <a href="/api/attribution/review?format=jsonl" download data-download="jsonl">Download JSONL</a></p>
<p class="muted" data-refresh="${s.registryRev}">Refreshed at registry revision ${s.registryRev}: ${s.considered} address(es) recomputed, ${s.changed} changed owner.</p>
<datalist id="org-names">${names.items.map((o) => html`<option value="${o.name}"></option>`)}</datalist>
<form data-form="assign-any" data-api="/api/attribution/assign" data-method="POST" class="filters">
<div><label for="r-target">Address or network</label><input id="r-target" name="target" required maxlength="100" placeholder="192.0.2.10 or 192.0.2.0/24"></div>
<div><label for="r-org">Organisation</label><input id="r-org" name="org" list="org-names" required maxlength="200"></div>
<div><label for="r-note">Note</label><input id="r-note" name="note" maxlength="1000"></div>
<div><button type="submit">Assign</button></div></form>
<form data-form="unassign" data-api="/api/attribution/unassign" data-method="POST" class="filters">
<div><label for="u-target">Remove the manual assignment of</label><input id="u-target" name="target" required maxlength="100"></div>
<div><button type="submit" class="secondary">Unassign</button></div></form>
${page.items.length === 0 && offset === 0 ? html`<p data-empty="review">Nothing to review: every observed address has an organisation.</p>` : html`
<table data-table="review"><thead><tr><th>Address</th><th>Kind</th><th>Ports</th><th>Hostnames</th><th>Feed ASN</th><th>First seen</th><th>Last seen</th><th>Candidates</th><th>Assign</th></tr></thead>
<tbody>${page.items.map(row)}</tbody></table>
<nav class="pager">${offset > 0 ? html`<a href="${withQuery('/review', { offset: Math.max(0, offset - PAGE_SIZE) })}" rel="prev">Previous</a>` : ''}${page.nextOffset === null ? '' : html`<a href="${withQuery('/review', { offset: page.nextOffset })}" rel="next">Next</a>`}</nav>`}`;
      return { title: 'Attribution review', body };
    },
  },
];
