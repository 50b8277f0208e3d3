/**
 * `/hosts` (the host list, paged and filtered on the server by a plain GET form) and `/hosts/:ip` (one host: its
 * attribution, findings with their history, every observation with evidence and verdicts, every feed row with its
 * raw line). Both render from the services GET /api/hosts and /api/hosts/:ip answer from. Every value from a host,
 * a feed or the registry (hostnames, banners, raw lines, organisation names) goes through the `html` tag.
 *
 * Paging is a keyset cursor; "previous" works by carrying the cursors of the pages before in `trail` (at most
 * TRAIL of them: beyond that, "first page" still works).
 */
import type { FastifyRequest } from 'fastify';
import { hostDetail, hostPage, type HostDetail, type HostLine, type HostQueryInput } from '../../services/dashboard.js';
import { html, path, type SafeHtml } from '../html.js';
import type { PageModule } from '../page.js';

const TRAIL = 20;
const FILTERS = ['q', 'org', 'sector', 'cve'] as const;

type Query = Partial<Record<(typeof FILTERS)[number] | 'cursor' | 'trail' | 'limit', string>>;

function queryOf(req: FastifyRequest): Query {
  const raw = (req.query ?? {}) as Record<string, unknown>;
  const out: Query = {};
  for (const k of [...FILTERS, 'cursor', 'trail', 'limit'] as const) {
    const v = raw[k];
    if (typeof v === 'string' && v !== '' && v.length <= 4000) out[k] = v;
  }
  return out;
}

function hostsUrl(q: Query, page: { cursor?: string | undefined; trail?: readonly string[] }): string {
  const p = new URLSearchParams();
  for (const k of FILTERS) if (q[k] !== undefined) p.set(k, q[k]);
  if (q.limit !== undefined) p.set('limit', q.limit);
  if (page.cursor !== undefined) p.set('cursor', page.cursor);
  if (page.trail !== undefined && page.trail.length > 0) p.set('trail', page.trail.join(','));
  const s = p.toString();
  return s === '' ? '/hosts' : `/hosts?${s}`;
}

/** The whole filtered list as a download (GET /api/hosts?format=csv|jsonl): the page's filters, no cursor. */
function downloadUrl(q: Query, format: 'csv' | 'jsonl'): string {
  const p = new URLSearchParams();
  for (const k of FILTERS) if (q[k] !== undefined) p.set(k, q[k]);
  p.set('format', format);
  return `/api/hosts?${p.toString()}`;
}

function hostRow(h: HostLine): SafeHtml {
  return html`<tr data-host="${h.ip}"><td><a href="${path`/hosts/${h.ip}`}"><code>${h.ip}</code></a></td>
<td>${h.org ?? html`<span class="muted">(unattributed)</span>`}</td><td>${h.sector ?? ''}</td><td><code>${h.hostname ?? ''}</code></td>
<td>${h.product ?? ''} ${h.build === null ? '' : html`<code>${h.build}</code>`}</td>
<td>${h.openCves.map((c) => html`<span class="tag bad">${c}</span>`)}${h.compromised ? html`<span class="tag bad">compromised</span>` : ''}</td>
<td class="num">${h.patched}</td><td>${h.lastSeen ?? ''}</td></tr>`;
}

function hostList(q: Query, items: readonly HostLine[], nextCursor: string | null): SafeHtml {
  const trail = (q.trail ?? '').split(',').filter((c) => c !== '').slice(-TRAIL);
  const here = q.cursor;
  const prev = trail.length > 0 ? hostsUrl(q, { cursor: trail[trail.length - 1] === '-' ? undefined : trail[trail.length - 1], trail: trail.slice(0, -1) }) : here === undefined ? null : hostsUrl(q, {});
  // '-' stands for the first page (no cursor) in the trail.
  const next = nextCursor === null ? null : hostsUrl(q, { cursor: nextCursor, trail: [...trail, here ?? '-'].slice(-TRAIL) });
  return html`<h1>Hosts</h1>
<form class="filters" method="get" action="/hosts">
<div><label for="f-q">Address or CIDR</label><input id="f-q" name="q" value="${q.q ?? ''}" placeholder="192.0.2.0/24"></div>
<div><label for="f-org">Organisation</label><input id="f-org" name="org" value="${q.org ?? ''}"></div>
<div><label for="f-sector">Sector</label><input id="f-sector" name="sector" value="${q.sector ?? ''}"></div>
<div><label for="f-cve">CVE</label><input id="f-cve" name="cve" value="${q.cve ?? ''}" placeholder="CVE-2021-26855"></div>
<div><button type="submit">Filter</button> <a href="/hosts">clear</a></div>
</form>
<p data-downloads="hosts">Every matching host: <a href="${downloadUrl(q, 'csv')}" download data-download="csv">Download CSV</a> · <a href="${downloadUrl(q, 'jsonl')}" download data-download="jsonl">Download JSONL</a></p>
<table data-table="hosts"><thead><tr><th>Address</th><th>Organisation</th><th>Sector</th><th>Host name</th><th>Product</th><th>Open CVEs</th><th class="num">patched</th><th>Last seen</th></tr></thead>
<tbody>${items.length === 0 ? html`<tr><td colspan="8" class="muted">No host matches.</td></tr>` : items.map(hostRow)}</tbody></table>
<nav class="pager">${prev === null ? '' : html`<a rel="prev" href="${prev}">← previous</a>`}${here === undefined ? '' : html`<a href="${hostsUrl(q, {})}">first page</a>`}${next === null ? '' : html`<a rel="next" href="${next}">next →</a>`}</nav>`;
}

function json(v: unknown): string {
  return JSON.stringify(v, null, 2);
}

function evidenceList(e: unknown): SafeHtml {
  if (!Array.isArray(e) || e.length === 0) return html`<span class="muted">none stored</span>`;
  return html`<ul>${(e as unknown[]).map((x) => {
    const o = (typeof x === 'object' && x !== null ? x : {}) as Record<string, unknown>;
    const s = (k: string): string => (typeof o[k] === 'string' ? (o[k] as string) : '');
    return html`<li><code>${s('detector')}</code> ${s('where')}${s('name') === '' ? '' : html` <code>${s('name')}</code>`} of <code>${s('url')}</code>: <code class="evidence">${s('excerpt')}</code></li>`;
  })}</ul>`;
}

export function hostDetailBody(d: HostDetail): SafeHtml {
  const a = d.attribution;
  return html`<h1>Host <code>${d.ip}</code></h1>
<h2>Owner</h2>
${a === null ? html`<p class="muted">Not attributed yet (the next fold or import refreshes the attribution).</p>` : html`<table data-table="attribution"><tbody>
<tr><th>Organisation</th><td data-field="org">${a.org ?? html`<span class="warn">unattributed (review queue)</span>`}</td></tr>
<tr><th>Sector</th><td>${a.sector ?? ''}</td></tr>
<tr><th>Rule</th><td>${a.rule ?? ''}${a.tie ? html` <span class="tag warn">tie</span>` : ''}</td></tr>
<tr><th>Confidence</th><td>${a.confidence}</td></tr>
<tr><th>Evidence</th><td><pre class="evidence">${json(a.evidence)}</pre></td></tr>
<tr><th>Other candidates</th><td><pre class="evidence">${json(a.candidates)}</pre></td></tr>
<tr><th>Attributed</th><td>${a.attributedAt}</td></tr>
${a.changes.length === 0 ? '' : html`<tr><th>Owner changes</th><td><ul>${a.changes.map((c) => html`<li>${c.at}: ${c.from ?? '(none)'} → ${c.to ?? '(none)'} (${c.rule ?? ''})</li>`)}</ul></td></tr>`}
</tbody></table>`}
<h2>Findings</h2>
${d.findings.length === 0 ? html`<p class="muted">No finding.</p>` : html`<table data-table="findings"><thead><tr><th>CVE</th><th>Port</th><th>State</th><th>Verdict</th><th>First seen</th><th>Last seen</th><th>History</th></tr></thead><tbody>
${d.findings.map((f) => html`<tr data-finding="${f.id}"><td><code>${f.cve}</code></td><td>${f.port ?? 'host'}</td>
<td class="${f.state === 'open' ? 'bad' : 'ok'}">${f.state}${f.closeReason === null ? '' : html` (${f.closeReason})`}</td><td>${f.verdict}${f.present ? '' : html` <span class="muted">(not seen lately)</span>`}</td>
<td>${f.firstSeen}</td><td>${f.lastSeen}</td>
<td><ol>${f.events.map((e) => html`<li>${e.at} <strong>${e.kind}</strong> by <code>${e.who}</code>${e.detail === null ? '' : html` <code>${JSON.stringify(e.detail)}</code>`}</li>`)}</ol></td></tr>`)}
</tbody></table>`}
<h2>Observations (scans and feeds' Exchange rows)</h2>
${d.observations.length === 0 ? html`<p class="muted">No observation.</p>` : html`<table data-table="observations"><thead><tr><th>Seen</th><th>Source</th><th>Port</th><th>Host name</th><th>Service</th><th>Verdict</th><th>Evidence</th></tr></thead><tbody>
${d.observations.map((o) => html`<tr data-observation="${o.id}"><td>${o.seenAt}</td><td>${o.source}${o.scanId === null ? '' : html` (scan ${o.scanId})`}</td><td>${o.port}${o.tls ? ' tls' : ''}${o.status === null ? '' : html` · ${o.status}`}</td>
<td><code>${o.hostname ?? ''}</code></td><td>${o.product ?? html`<span class="muted">not identified</span>`} ${o.edition ?? ''} ${o.build === null ? '' : html`<code>${o.build}</code> (${o.buildPrecision ?? ''})`}</td>
<td>${o.verdict === null ? html`<span class="muted">not assessed</span>` : html`${o.verdict.vulnerable.map((c) => html`<span class="tag bad">${c}</span>`)}${o.verdict.indeterminate.map((c) => html`<span class="tag warn">${c}?</span>`)}${o.verdict.vulnerable.length + o.verdict.indeterminate.length === 0 ? html`<span class="ok">not vulnerable</span>` : ''} <span class="muted">kb ${o.verdict.kbRevision ?? '?'}</span>`}</td>
<td>${evidenceList(o.evidence)}</td></tr>`)}
</tbody></table>`}
<h2>Feed rows</h2>
${d.feedRows.length === 0 ? html`<p class="muted">No feed row.</p>` : html`<table data-table="feed-rows"><thead><tr><th>Report</th><th>Port</th><th>Host name</th><th>Tags</th><th>Claimed CVEs</th><th>Raw line</th></tr></thead><tbody>
${d.feedRows.map((f) => html`<tr data-feed-row="${f.id}"><td>${f.feed} ${f.reportType} ${f.reportDate}<br><span class="muted">${f.file ?? ''}:${f.line}</span></td><td>${f.port ?? ''}</td>
<td><code>${f.hostname ?? ''}</code></td><td>${f.tags.map((t) => html`<span class="tag">${t}</span>`)}${f.compromised ? html`<span class="tag bad">compromised</span>` : ''}</td>
<td>${f.reportedCves.map((c) => html`<span class="tag">${c}</span>`)}</td><td><pre class="evidence">${f.raw}</pre></td></tr>`)}
</tbody></table>`}
<p class="muted">Each list shows at most ${d.cap} rows, newest first. As data: <a href="${path`/api/hosts/${d.ip}`}">/api/hosts/${d.ip}</a>.</p>`;
}

export const hostPages: PageModule = ({ db }) => [
  {
    url: '/hosts',
    audience: 'staff',
    audit: true,
    render: async ({ req }) => {
      const q = queryOf(req);
      const input: HostQueryInput = {
        ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
        ...(q.limit === undefined || !/^\d{1,3}$/.test(q.limit) ? {} : { limit: Number(q.limit) }),
        ...(q.q === undefined ? {} : { q: q.q }), ...(q.org === undefined ? {} : { org: q.org }),
        ...(q.sector === undefined ? {} : { sector: q.sector }), ...(q.cve === undefined ? {} : { cve: q.cve }),
      };
      const page = await hostPage(db, input);
      req.orgScope = page.orgScope;
      return { title: 'Hosts', body: hostList(q, page.items, page.nextCursor) };
    },
  },
  {
    url: '/hosts/:ip',
    audience: 'staff',
    audit: true,
    render: async ({ req }) => {
      const d = await hostDetail(db, (req.params as { ip?: string }).ip ?? '');
      req.orgScope = d.attribution?.orgId ?? null;
      return { title: `Host ${d.ip}`, body: hostDetailBody(d) };
    },
  },
];
