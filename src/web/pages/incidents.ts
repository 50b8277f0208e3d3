/**
 * Incident report pages (issue 10 §5). Staff: `/incidents` (the triage queue: status, category, owner, organisation,
 * SLA due times and overdue flags; GET-form filters; CSV/JSONL download of the filtered list) and `/incidents/:id`
 * (everything, the triage form, links to the findings' hosts and the campaigns, a form to link by hand, the MISP and
 * STIX exports). Organisations: `/portal/incidents` (own reports), `/portal/incidents/new`
 * (the stage-0 form; `?campaign=ID` or `?cves=CVE-...` pre-fill the warning and CVEs) and `/portal/incidents/:id`
 * (own report; stage 1, the final report and uploads of the forensics kit's output).
 * Every reported value is hostile text: it goes through the `html` tag only; forms post JSON through app.js.
 */
import { TocsinError } from '../../core/errors.js';
import { scopeOf } from '../../services/accounts.js';
import {
  CATEGORIES, CATEGORY_LABELS, INCIDENT_STATUSES, INCIDENT_TYPES, INCIDENT_TYPE_LABELS, SLA_TARGETS, TLP_VALUES, allowedTransitions,
  listIncidentPage, showIncident, warningPrefill, type IncidentDetail, type IncidentSummary,
} from '../../services/incidents.js';
import { html, path, type SafeHtml } from '../html.js';
import type { PageModule, PageRequest } from '../page.js';
import type { RouteContext } from '../route.js';

type Query = Readonly<Record<string, unknown>>;

function q(p: PageRequest, name: string): string | undefined {
  const v = (p.req.query as Query)[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function idOf(p: PageRequest): number {
  const raw = (p.req.params as Record<string, string | undefined>)['id'] ?? '';
  if (!/^\d{1,15}$/.test(raw)) throw new TocsinError('TOCSIN_INCIDENT_NOT_FOUND', 'no such incident report');
  return Number(raw);
}

function clockCell(c: { due: string; at: string | null; overdue: boolean; late: boolean }): SafeHtml {
  if (c.at !== null) return html`<span class="${c.late ? 'warn' : 'ok'}" data-clock="${c.late ? 'late' : 'met'}">met ${c.at.slice(0, 16).replace('T', ' ')}${c.late ? ' (late)' : ''}</span>`;
  return html`<span${c.overdue ? html` class="bad"` : ''} data-clock="${c.overdue ? 'overdue' : 'running'}">${c.overdue ? 'OVERDUE ' : 'due '}${c.due.slice(0, 16).replace('T', ' ')}</span>`;
}

function statusTag(s: string): SafeHtml {
  return html`<span class="tag" data-status="${s}">${s}</span>`;
}

function queueTable(items: readonly IncidentSummary[], staff: boolean): SafeHtml {
  if (items.length === 0) return html`<p class="muted">No incident report matches.</p>`;
  const link = (i: IncidentSummary): string => (staff ? path`/incidents/${i.id}` : path`/portal/incidents/${i.id}`);
  return html`<table class="data" data-table="incidents"><thead><tr><th>Id</th><th>Reported (UTC)</th><th>Status</th><th>Category</th>${staff ? html`<th>Owner</th><th>Organisation</th>` : ''}<th>Types</th><th>TLP</th><th>Acknowledge</th><th>First response</th><th>What happened</th></tr></thead><tbody>
${items.map((i) => html`<tr data-incident="${i.id}"${i.sla.overdue ? html` class="overdue"` : ''}><td><a href="${link(i)}">#${i.id}</a></td><td>${i.reportedAt.slice(0, 16).replace('T', ' ')}</td><td>${statusTag(i.status)}</td>
<td>${i.category ?? html`<span class="muted">(${i.sla.category}, provisional)</span>`}</td>${staff ? html`<td>${i.owner ?? '—'}</td><td>${i.org ?? '—'}${i.orgUnregistered ? html` <span class="muted">(not in registry)</span>` : ''}</td>` : ''}
<td>${i.types.map((t) => html`<span class="tag">${t}</span>`)}</td><td>${i.tlp}</td><td>${clockCell(i.sla.acknowledge)}</td><td>${clockCell(i.sla.firstResponse)}</td>
<td>${i.summary.length > 160 ? `${i.summary.slice(0, 159)}…` : i.summary}</td></tr>
`)}</tbody></table>`;
}

function option(value: string, label: string, selected: string | undefined): SafeHtml {
  return html`<option value="${value}"${value === selected ? html` selected` : ''}>${label}</option>`;
}

function textBlock(label: string, value: unknown): SafeHtml | string {
  if (typeof value !== 'string' || value.trim() === '') return '';
  return html`<dt>${label}</dt><dd><pre class="text">${value}</pre></dd>`;
}

function listBlock(label: string, value: unknown): SafeHtml | string {
  if (!Array.isArray(value) || value.length === 0) return '';
  return html`<dt>${label}</dt><dd><ul>${value.map((v) => html`<li><code>${String(v)}</code></li>`)}</ul></dd>`;
}

function field(obj: unknown, key: string): unknown {
  return typeof obj === 'object' && obj !== null && !Array.isArray(obj) ? (obj as Record<string, unknown>)[key] : undefined;
}

function detailBody(d: IncidentDetail, staff: boolean): SafeHtml {
  const s0 = d.stage0;
  const impact = field(s0, 'impact');
  const impacts = (['confidentiality', 'integrity', 'availability', 'personalData'] as const).filter((k) => field(impact, k) === true);
  const hostLink = (ip: string): string => (staff ? path`/hosts/${ip}` : path`/portal/hosts/${ip}`);
  return html`<dl class="facts" data-section="stage0">
<dt>Status</dt><dd>${statusTag(d.status)}${d.duplicateOf === null ? '' : html` of <a href="${staff ? path`/incidents/${d.duplicateOf}` : path`/portal/incidents/${d.duplicateOf}`}">#${d.duplicateOf}</a>`}</dd>
<dt>Category</dt><dd>${d.category === null ? html`<span class="muted">not yet (${d.sla.category} clocks, provisional)</span>` : html`${d.category} — ${CATEGORY_LABELS[d.category]}`}</dd>
${staff ? html`<dt>Owner</dt><dd>${d.owner ?? '—'}</dd>` : ''}
<dt>Acknowledge</dt><dd>${clockCell(d.sla.acknowledge)}</dd><dt>First response</dt><dd>${clockCell(d.sla.firstResponse)}</dd>
<dt>Organisation</dt><dd>${d.org ?? '—'}${d.orgUnregistered ? html` <span class="muted">(free text, not in the registry)</span>` : ''}</dd>
<dt>Reporter</dt><dd>${d.reporter.name} (${d.reporter.role}), <code>${d.reporter.phone}</code>, <code>${d.reporter.email}</code></dd>
<dt>Reported</dt><dd>${d.reportedAt} via ${d.reportedVia}${staff ? html` by ${d.reportedBy}` : ''}</dd>
<dt>Detected</dt><dd>${d.detectedAt}${typeof field(s0, 'timeZone') === 'string' ? html` (${String(field(s0, 'timeZone'))})` : ''}; ${d.ongoing ? html`<strong class="bad">ongoing</strong>` : 'not ongoing'}</dd>
<dt>Types</dt><dd>${d.types.map((t) => html`<span class="tag">${t}</span>`)}</dd>
<dt>CVEs</dt><dd>${d.cves.length === 0 ? '—' : d.cves.map((c) => html`<code>${c}</code> `)}</dd>
<dt>Impact</dt><dd>${impacts.length === 0 ? 'none stated' : impacts.join(', ')}</dd>
<dt>TLP</dt><dd><span class="tag" data-tlp="${d.tlp}">TLP:${d.tlp}</span></dd>
${textBlock('What happened', field(s0, 'summary'))}${textBlock('Help requested', field(s0, 'helpRequested'))}
</dl>
<h2>Technical details (stage 1)</h2>
${d.stage1 === null ? html`<p class="muted">Not given yet.</p>` : html`<dl class="facts" data-section="stage1"><dt>Given</dt><dd>${d.stage1At ?? ''}</dd>
${listBlock('Affected assets', field(d.stage1, 'assets'))}${listBlock('Indicators', field(d.stage1, 'indicators'))}${textBlock('Actions taken', field(d.stage1, 'actionsTaken'))}
${listBlock('Also told', field(d.stage1, 'othersInformed'))}${textBlock('Notes', field(d.stage1, 'notes'))}</dl>`}
<h2>Final report</h2>
${d.final === null ? html`<p class="muted">Not given yet.</p>` : html`<dl class="facts" data-section="final"><dt>Given</dt><dd>${d.finalAt ?? ''}</dd>
${textBlock('Root cause', field(d.final, 'rootCause'))}${textBlock('Resolution', field(d.final, 'resolution'))}${textBlock('Lessons learned', field(d.final, 'lessonsLearned'))}
<dt>Data exfiltrated</dt><dd>${String(field(d.final, 'dataExfiltrated') ?? 'unknown')}</dd></dl>`}
<h2>Links</h2>
${d.links.length === 0 ? html`<p class="muted">None.</p>` : html`<ul data-section="links">${d.links.map((l) => html`<li data-link="${l.kind}">${
    l.kind === 'finding' && l.finding !== null ? html`finding #${l.targetId}: <a href="${hostLink(l.finding.ip)}">${l.finding.ip}${l.finding.port === null ? '' : `:${l.finding.port}`}</a> <code>${l.finding.cve}</code> (${l.finding.state})`
      : l.kind === 'campaign' ? (staff ? html`campaign <a href="${path`/campaigns/${l.targetId}`}">#${l.targetId}</a> ${l.campaign?.name ?? ''}` : html`warning (campaign #${l.targetId}) ${l.campaign?.name ?? ''}`)
        : l.kind === 'incident' ? html`report <a href="${staff ? path`/incidents/${l.targetId}` : path`/portal/incidents/${l.targetId}`}">#${l.targetId}</a> (${l.incident?.status ?? ''})`
          : html`${l.kind} #${l.targetId}`} <span class="muted">${l.relation}</span></li>`)}</ul>`}
<h2>Attachments</h2>
${d.attachments.length === 0 ? html`<p class="muted">None.</p>` : html`<ul data-section="attachments">${d.attachments.map((a) => html`<li><a href="${path`/api/incidents/${d.id}/attachments/${a.id}`}" download>${a.filename}</a> (${a.bytes} bytes, ${a.contentType}, sha256 <code>${a.sha256.slice(0, 16)}…</code>, ${a.uploadedAt.slice(0, 16)} by ${a.uploadedBy})</li>`)}</ul>`}
<h2>History</h2>
<table class="data" data-table="events"><thead><tr><th>When (UTC)</th><th>What</th><th>Who</th><th>Detail</th></tr></thead><tbody>
${d.events.map((e) => html`<tr><td>${e.at.slice(0, 19).replace('T', ' ')}</td><td>${e.kind}</td><td>${e.who}</td><td><code>${e.detail === null ? '' : JSON.stringify(e.detail)}</code></td></tr>`)}
</tbody></table>`;
}

function stage1Form(d: IncidentDetail, redirect: string): SafeHtml {
  return html`<form data-form="stage1" data-api="${path`/api/incidents/${d.id}/stage1`}" data-method="PUT" data-redirect="${redirect}">
<fieldset><legend>${d.stage1 === null ? 'Add technical details (stage 1)' : 'Replace technical details (stage 1)'}</legend>
<label for="s1-assets">Affected systems (one per line)</label><textarea id="s1-assets" name="assets" data-type="lines"></textarea>
<label for="s1-ioc">Indicators: addresses, domains, hashes, file paths (one per line)</label><textarea id="s1-ioc" name="indicators" data-type="lines"></textarea>
<label for="s1-actions">Actions taken</label><textarea id="s1-actions" name="actionsTaken"></textarea>
<label for="s1-told">Who else was told (police, data-protection authority, insurer, vendor; one per line)</label><textarea id="s1-told" name="othersInformed" data-type="lines"></textarea>
<label for="s1-notes">Notes</label><textarea id="s1-notes" name="notes"></textarea>
<p><button type="submit">Save stage 1</button></p></fieldset></form>`;
}

function finalForm(d: IncidentDetail, redirect: string): SafeHtml {
  return html`<form data-form="final" data-api="${path`/api/incidents/${d.id}/final`}" data-method="PUT" data-redirect="${redirect}">
<fieldset><legend>Final report</legend>
<label for="f-root">Root cause</label><textarea id="f-root" name="rootCause" required></textarea>
<label for="f-res">Resolution</label><textarea id="f-res" name="resolution" required></textarea>
<label for="f-lessons">Lessons learned</label><textarea id="f-lessons" name="lessonsLearned"></textarea>
<label for="f-ex">Data exfiltrated?</label><select id="f-ex" name="dataExfiltrated">${option('unknown', 'unknown', 'unknown')}${option('yes', 'yes', undefined)}${option('no', 'no', undefined)}</select>
<p><button type="submit">Save final report</button></p></fieldset></form>`;
}

function uploadForm(d: IncidentDetail, redirect: string): SafeHtml {
  return html`<form data-form="upload" data-api="${path`/api/incidents/${d.id}/attachments`}" data-method="POST" data-redirect="${redirect}">
<fieldset><legend>Add the forensics kit's output</legend>
<p>Run the kit (<a href="/api/forensics-kit">download</a>) with <code>--format json</code> and paste its report here (at most 5 MiB). Scripts can upload any file through <code>POST /api/incidents/${d.id}/attachments</code> with <code>contentBase64</code>.</p>
<label for="u-name">File name</label><input id="u-name" name="filename" value="forensics-report.json" required maxlength="300">
<label for="u-text">Content</label><textarea id="u-text" name="text" required></textarea>
<p><button type="submit">Upload</button></p></fieldset></form>`;
}

function triageForm(d: IncidentDetail): SafeHtml {
  const next = allowedTransitions(d.status);
  return html`<form data-form="triage" data-api="${path`/api/incidents/${d.id}/triage`}" data-method="POST" data-redirect="${path`/incidents/${d.id}`}">
<fieldset><legend>Triage</legend>
<label for="t-status">Status</label><select id="t-status" name="status">${option(d.status, `${d.status} (unchanged)`, d.status)}${next.map((s) => option(s, s, undefined))}</select>
<label for="t-cat">Category</label><select id="t-cat" name="category">${option('', d.category === null ? '(none yet)' : `${d.category} (unchanged)`, '')}${CATEGORIES.map((c) => option(c, `${c} — ${CATEGORY_LABELS[c]} (ack ${SLA_TARGETS[c].acknowledgeMs / 60_000} min)`, undefined))}</select>
<label for="t-owner">Owner (empty: nobody)</label><input id="t-owner" name="owner" value="${d.owner ?? ''}" maxlength="200" data-keep-empty>
<label for="t-dup">Duplicate of report #</label><input id="t-dup" name="duplicateOf" data-type="number" inputmode="numeric">
<label for="t-note">Note</label><textarea id="t-note" name="note"></textarea>
<p><button type="submit">Save triage</button></p></fieldset></form>`;
}

function linkForm(d: IncidentDetail): SafeHtml {
  return html`<form data-form="link" data-api="${path`/api/incidents/${d.id}/links`}" data-method="POST" data-redirect="${path`/incidents/${d.id}`}">
<fieldset><legend>Link by hand</legend>
<label for="l-kind">To</label><select id="l-kind" name="kind">${option('finding', 'finding', 'finding')}${option('campaign', 'campaign', undefined)}${option('incident', 'another report', undefined)}</select>
<label for="l-target">Id</label><input id="l-target" name="targetId" data-type="number" inputmode="numeric" required>
<label for="l-note">Why (internal note, not shown to the organisation)</label><textarea id="l-note" name="note"></textarea>
<p><button type="submit">Add link</button></p></fieldset></form>`;
}

/** The MISP event and STIX bundle of the report (staff-only routes in src/web/routes/exports.ts). */
function exportLinks(d: IncidentDetail): SafeHtml {
  return html`<p class="downloads" data-section="exports">Export: <a href="${path`/api/incidents/${d.id}/misp.json`}" download data-export="misp">MISP event</a> / <a href="${path`/api/incidents/${d.id}/stix.json`}" download data-export="stix">STIX 2.1 bundle</a></p>`;
}

function filters(p: PageRequest, staff: boolean): SafeHtml {
  const status = q(p, 'status');
  const category = q(p, 'category');
  return html`<form class="filters" method="get" action="${staff ? '/incidents' : '/portal/incidents'}">
<div><label for="f-status">Status</label><select id="f-status" name="status">${option('open', 'open (received, triage, incident)', status ?? 'open')}${option('all', 'all', status)}${INCIDENT_STATUSES.map((s) => option(s, s, status))}</select></div>
<div><label for="f-cat">Category</label><select id="f-cat" name="category">${option('', 'any', category ?? '')}${CATEGORIES.map((c) => option(c, c, category))}</select></div>
<div><label><input type="checkbox" name="overdue" value="true"${q(p, 'overdue') === 'true' ? html` checked` : ''}> overdue only</label></div>
${staff ? html`<div><label for="f-org">Organisation</label><input id="f-org" name="org" value="${q(p, 'org') ?? ''}" maxlength="200"></div>` : ''}
<div><button type="submit">Filter</button></div></form>`;
}

async function listPage(ctx: RouteContext, p: PageRequest, staff: boolean): Promise<SafeHtml> {
  const scope = scopeOf(p.principal);
  if (scope.kind === 'org') p.req.orgScope = scope.orgId;
  const org = q(p, 'org');
  const category = q(p, 'category');
  const cursor = q(p, 'cursor');
  const page = await listIncidentPage(ctx.db, scope, {
    status: q(p, 'status') ?? 'open', limit: 100, overdue: q(p, 'overdue') === 'true',
    ...(category === undefined ? {} : { category }), ...(staff && org !== undefined ? { org } : {}), ...(cursor === undefined ? {} : { cursor }),
  });
  const params = new URLSearchParams();
  for (const k of ['status', 'category', 'overdue', 'org']) {
    const v = q(p, k);
    if (v !== undefined) params.set(k, v);
  }
  // The download is the whole list under the same filters (the page's default status made explicit: the API's is all).
  const download = new URLSearchParams(params);
  download.set('status', q(p, 'status') ?? 'open');
  if (!staff) download.delete('org');
  const csv = new URLSearchParams(download);
  csv.set('format', 'csv');
  download.set('format', 'jsonl');
  if (page.nextCursor !== null) params.set('cursor', page.nextCursor);
  const base = staff ? '/incidents' : '/portal/incidents';
  return html`${filters(p, staff)}<p class="downloads" data-section="downloads">Download this list: <a href="${`/api/incidents?${csv.toString()}`}" download data-download="csv">CSV</a> / <a href="${`/api/incidents?${download.toString()}`}" download data-download="jsonl">JSONL</a></p>
${queueTable(page.items, staff)}${page.nextCursor === null ? '' : html`<p><a href="${`${base}?${params.toString()}`}" rel="next">Older reports</a></p>`}`;
}

function nowUtcMinute(): string {
  return `${new Date().toISOString().slice(0, 16)}Z`;
}

async function newReportForm(ctx: RouteContext, p: PageRequest): Promise<SafeHtml> {
  const scope = scopeOf(p.principal);
  if (scope.kind === 'org') p.req.orgScope = scope.orgId;
  const campaignRaw = q(p, 'campaign');
  const warning = campaignRaw !== undefined && /^\d{1,15}$/.test(campaignRaw) ? await warningPrefill(ctx.db, scope, Number(campaignRaw)) : null;
  const asked = (q(p, 'cves') ?? '').split(/[\s,]+/).map((c) => c.trim().toUpperCase()).filter((c) => /^CVE-\d{4}-\d{4,7}$/.test(c));
  const cves = [...new Set([...(warning?.cves ?? []), ...asked])].slice(0, 100);
  return html`<form data-form="report" data-api="/api/incidents" data-method="POST" data-redirect="/portal/incidents/{id}">
${warning === null ? '' : html`<p class="warn" data-prefill="campaign">Reporting about our warning “${warning.name}” (campaign #${warning.campaignId}).</p><input type="hidden" name="campaignId" value="${warning.campaignId}" data-type="number">`}
<fieldset><legend>Who we can reach</legend>
<p>Give an e-mail address on a system that is <strong>not</strong> affected: the attacker may read your own mail.</p>
<label for="r-name">Name</label><input id="r-name" name="reporter.name" required maxlength="200">
<label for="r-role">Role</label><input id="r-role" name="reporter.role" required maxlength="200">
<label for="r-phone">Phone</label><input id="r-phone" name="reporter.phone" type="tel" required maxlength="40">
<label for="r-email">Contact e-mail (uncompromised system)</label><input id="r-email" name="reporter.email" type="email" required maxlength="320">
</fieldset>
<fieldset><legend>What happened</legend>
<label for="r-summary">Describe what you saw</label><textarea id="r-summary" name="summary" required></textarea>
<p><strong>Type</strong> (all that apply)</p>
${INCIDENT_TYPES.map((t) => html`<label><input type="checkbox" name="types" value="${t}"> ${INCIDENT_TYPE_LABELS[t]}</label>`)}
<label for="r-cves">Related CVEs (one per line)</label><textarea id="r-cves" name="cves" data-type="lines">${cves.join('\n')}</textarea>
<label for="r-detected">Detected at (with time zone, e.g. 2026-03-02T09:30+01:00)</label><input id="r-detected" name="detectedAt" required value="${nowUtcMinute()}" maxlength="40">
<label for="r-tz">Your time zone (optional, e.g. Europe/Berlin)</label><input id="r-tz" name="timeZone" maxlength="64">
<p><strong>Still going on?</strong></p>
<label><input type="radio" name="ongoing" value="true" data-type="boolean" checked> yes / not sure</label><label><input type="radio" name="ongoing" value="false" data-type="boolean"> no</label>
<p><strong>Impact</strong></p>
<label><input type="checkbox" name="impact.confidentiality" data-type="boolean"> confidentiality (data seen by others)</label>
<label><input type="checkbox" name="impact.integrity" data-type="boolean"> integrity (data or systems changed)</label>
<label><input type="checkbox" name="impact.availability" data-type="boolean"> availability (systems down)</label>
<label><input type="checkbox" name="impact.personalData" data-type="boolean"> personal data involved</label>
<label for="r-help">Help requested</label><textarea id="r-help" name="helpRequested"></textarea>
<label for="r-tlp">Sharing (TLP)</label><select id="r-tlp" name="tlp">${TLP_VALUES.map((t) => option(t, `TLP:${t}`, 'AMBER'))}</select>
</fieldset>
<p><button type="submit">Send report</button></p></form>`;
}

export const incidentPages: PageModule = (ctx) => [
  {
    url: '/incidents', audience: 'staff', audit: true,
    render: async (p) => ({ title: 'Incidents', body: html`<h1>Incident reports</h1>${await listPage(ctx, p, true)}` }),
  },
  {
    url: '/incidents/:id', audience: 'staff', audit: true,
    render: async (p) => {
      const d = await showIncident(ctx.db, scopeOf(p.principal), idOf(p));
      p.req.orgScope = d.orgId;
      return { title: `Incident #${d.id}`, body: html`<h1>Incident #${d.id}</h1>${exportLinks(d)}${detailBody(d, true)}${linkForm(d)}${triageForm(d)}${stage1Form(d, path`/incidents/${d.id}`)}${finalForm(d, path`/incidents/${d.id}`)}${uploadForm(d, path`/incidents/${d.id}`)}` };
    },
  },
  {
    url: '/portal/incidents', audience: 'org', audit: true,
    render: async (p) => ({ title: 'Our incident reports', body: html`<h1>Our incident reports</h1><p><a href="/portal/incidents/new">Report an incident</a></p>${await listPage(ctx, p, false)}` }),
  },
  {
    url: '/portal/incidents/new', audience: 'org', audit: true,
    render: async (p) => ({ title: 'Report an incident', body: html`<h1>Report an incident</h1><p>This first report takes a few minutes; technical details can follow.</p>${await newReportForm(ctx, p)}` }),
  },
  {
    url: '/portal/incidents/:id', audience: 'org', audit: true,
    render: async (p) => {
      const scope = scopeOf(p.principal);
      if (scope.kind === 'org') p.req.orgScope = scope.orgId;
      const d = await showIncident(ctx.db, scope, idOf(p));
      const back = path`/portal/incidents/${d.id}`;
      return { title: `Incident report #${d.id}`, body: html`<h1>Incident report #${d.id}</h1>${detailBody(d, false)}${stage1Form(d, back)}${uploadForm(d, back)}${d.status === 'resolved' || d.stage1 !== null ? finalForm(d, back) : ''}` };
    },
  },
];
