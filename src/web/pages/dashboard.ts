/**
 * `/`: the national picture (issue 10 §3), rendered from the same service call GET /api/summary answers from
 * (src/services/dashboard.ts nationalSummary, cached), so every number on the page is the API's. Each number carries
 * `data-metric` = its path in the API's JSON (`totals.hostsExposed`, `byGroup.0.findingsOpen`), for tests and scripts.
 * Organisation users are sent to /portal by the app.
 */
import { nationalSummary, type NationalSummary, type PictureCounts } from '../../services/dashboard.js';
import { html, type SafeHtml } from '../html.js';
import type { PageModule } from '../page.js';

const CARDS: ReadonlyArray<readonly [keyof PictureCounts, string]> = [
  ['hostsExposed', 'Exposed hosts'],
  ['hostsVulnerable', 'Vulnerable hosts'],
  ['organisationsExposed', 'Organisations exposed'],
  ['findingsOpen', 'Open findings'],
  ['findingsPatched', 'Patched findings'],
  ['findingsNotified', 'Notified findings'],
  ['hostsCompromised', 'Compromised hosts'],
];

const COLUMNS: ReadonlyArray<readonly [keyof PictureCounts, string]> = [
  ['hostsExposed', 'exposed hosts'],
  ['hostsVulnerable', 'vulnerable hosts'],
  ['organisationsExposed', 'organisations'],
  ['findingsOpen', 'open findings'],
  ['findingsPatched', 'patched'],
  ['findingsNotified', 'notified'],
];

function metric(pathText: string, value: number): SafeHtml {
  return html`<span data-metric="${pathText}">${value}</span>`;
}

function countCells(prefix: string, c: PictureCounts, extra: ReadonlyArray<keyof PictureCounts> = []): SafeHtml[] {
  return [...COLUMNS.map(([k]) => k), ...extra].map((k) => html`<td class="num">${metric(`${prefix}.${k}`, c[k])}</td>`);
}

export function nationalPicture(s: NationalSummary): SafeHtml {
  const bad = (k: keyof PictureCounts): string => (k === 'hostsCompromised' || k === 'hostsVulnerable') && s.totals[k] > 0 ? 'value bad' : k === 'findingsPatched' ? 'value ok' : 'value';
  return html`<h1>National picture</h1>
<p class="muted">Product <code>${s.product}</code>; computed ${s.computedAt} from the stored findings (recomputed when they change).</p>
<section class="cards">${CARDS.map(([k, label]) => html`<div class="card"><div class="${bad(k)}">${metric(`totals.${k}`, s.totals[k])}</div><div class="label" title="${s.definitions[k]}">${label}</div></div>`)}</section>
<h2>Per CVE group</h2>
<table data-table="groups"><thead><tr><th>Group</th><th>CVEs</th>${COLUMNS.map(([, label]) => html`<th class="num">${label}</th>`)}</tr></thead>
<tbody>${s.byGroup.map((g, i) => html`<tr data-group="${g.group}"><td>${g.group}${g.headline ? html` <span class="tag">headline</span>` : ''}</td><td>${g.cves.map((c) => html`<a class="tag" href="/hosts?cve=${encodeURIComponent(c)}">${c}</a>`)}</td>${countCells(`byGroup.${i}`, g)}</tr>`)}</tbody></table>
<h2>Per sector</h2>
<table data-table="sectors"><thead><tr><th>Sector</th>${COLUMNS.map(([, label]) => html`<th class="num">${label}</th>`)}<th class="num">compromised hosts</th></tr></thead>
<tbody>${s.bySector.map((r, i) => html`<tr data-sector="${r.sector}"><td><a href="/hosts?sector=${encodeURIComponent(r.sector)}">${r.sector}</a></td>${countCells(`bySector.${i}`, r, ['hostsCompromised'])}</tr>`)}</tbody></table>
<h2>Patch curve</h2>
<p><img class="chart" src="/api/charts/patch-curve.svg" alt="The patch curve: findings exposed, notified, acknowledged, patched and compromised per day"></p>
<p class="muted">As data: <a href="/api/stats/patch-curve">/api/stats/patch-curve</a>. What each number counts: ${Object.entries(s.definitions).map(([k, d]) => html`<br><code>${k}</code>: ${d}`)}</p>`;
}

export const dashboardPages: PageModule = ({ db }) => [
  {
    url: '/',
    audience: 'staff',
    render: async () => ({ title: 'National picture', body: nationalPicture(await nationalSummary(db)) }),
  },
];
