/**
 * The organisation portal's pages (issue 10 §4), for organisation accounts: `/portal` (own exposures, evidence
 * summary, remediation, the verification-rescan form, the CSV and the forensics kit), `/portal/hosts/:ip` (one own
 * host; 404 for any other address) and `/portal/warnings` (own warnings, each with an acknowledge button).
 * Everything shown from a host, a feed or the registry is hostile text: it goes through the `html` tag only.
 * Incident pages (/portal/incidents*) are another module's.
 */
import { TocsinError } from '../../core/errors.js';
import { portalExposures, portalOrg, portalWarnings, type PortalExposure } from '../../services/portal.js';
import { listRescans, type RescanView } from '../../services/rescan-requests.js';
import { html, path, type SafeHtml } from '../html.js';
import type { PageModule, PageRequest } from '../page.js';
import type { RouteContext } from '../route.js';

async function ownOrg(ctx: RouteContext, p: PageRequest): Promise<{ orgId: number; org: string }> {
  const o = await portalOrg(ctx.db, p.principal);
  p.req.orgScope = o.orgId;
  return o;
}

function cveList(cves: readonly string[]): SafeHtml | string {
  return cves.length === 0 ? '—' : html`${cves.map((c, i) => html`${i > 0 ? ', ' : ''}<code>${c}</code>`)}`;
}

function service(r: PortalExposure): string {
  return r.port === null ? r.ip : `${r.ip}:${r.port}`;
}

function evidenceSummary(r: PortalExposure): SafeHtml | string {
  const e = r.evidence[0];
  if (e === undefined) return r.sources.length === 0 ? '—' : `reported by ${r.sources.join(', ')}`;
  return html`${e.where}${e.name === null ? '' : html` ${e.name}`}: <code>${e.excerpt.slice(0, 120)}</code>${r.evidence.length > 1 ? html` (+${r.evidence.length - 1})` : ''}`;
}

function openCount(r: PortalExposure): number {
  return r.findings.filter((f) => f.state === 'open').length;
}

function exposuresTable(items: readonly PortalExposure[]): SafeHtml {
  if (items.length === 0) return html`<p>No exposure of your organisation is known to us.</p>`;
  return html`<table class="data"><thead><tr><th>Host</th><th>Product and build</th><th>Vulnerable</th><th>Undetermined</th><th>Open findings</th><th>Evidence</th><th>What to do</th></tr></thead><tbody>
${items.map((r) => html`<tr data-host="${r.ip}" data-port="${r.port ?? ''}"><td><a href="${path`/portal/hosts/${r.ip}`}">${service(r)}</a>${r.hostname === null ? '' : html`<br><small>${r.hostname}</small>`}</td>
<td>${r.edition ?? r.product ?? '—'}${r.build === null ? '' : html`<br><small>${r.build}${r.buildPrecision === 'cu' ? ' (cumulative update only)' : ''}</small>`}</td>
<td>${cveList(r.vulnerable)}</td><td>${cveList(r.indeterminate)}</td><td>${openCount(r)}</td><td>${evidenceSummary(r)}</td>
<td>${r.remediation.length === 0 ? 'Nothing known to fix.' : html`<details><summary>${r.remediation.length} CVE${r.remediation.length === 1 ? '' : 's'}</summary><ul>${r.remediation.map((m) => html`<li><code>${m.cve}</code>${m.group === null ? '' : html` (${m.group})`}: ${m.action}</li>`)}</ul></details>`}</td></tr>
`)}</tbody></table>`;
}

function rescanForm(items: readonly PortalExposure[]): SafeHtml {
  const ips = [...new Set(items.filter((r) => r.port !== null && (r.vulnerable.length > 0 || r.indeterminate.length > 0 || openCount(r) > 0)).map((r) => r.ip))];
  if (ips.length === 0) return html`<p>Nothing to verify: no service of yours is open in our records.</p>`;
  return html`<form data-form="rescan" data-api="/api/my/rescans" data-method="POST" data-redirect="/portal">
<fieldset><legend>Request a verification rescan</legend>
<p>After patching, ask us to scan your services again: the result closes the findings that are fixed, and keeps those that are not.</p>
${ips.map((ip) => html`<label><input type="checkbox" name="ips" value="${ip}" checked> ${ip}</label> `)}
<p><button type="submit">Request verification rescan</button></p></fieldset><pre data-result></pre></form>`;
}

function rescanTable(rows: readonly RescanView[]): SafeHtml {
  if (rows.length === 0) return html`<p>No verification rescan asked for yet.</p>`;
  return html`<table class="data"><thead><tr><th>Asked</th><th>By</th><th>Services</th><th>Status</th><th>Closed</th><th>Still open</th></tr></thead><tbody>
${rows.slice(0, 20).map((r) => html`<tr data-rescan="${r.id}"><td>${r.requestedAt}</td><td>${r.requestedBy}</td><td>${r.targets.length}</td><td>${r.status}${r.error === null ? '' : html`<br><small>${r.error}</small>`}</td><td>${r.closed ?? '—'}</td><td>${r.stillOpen ?? '—'}</td></tr>
`)}</tbody></table>`;
}

export const portalPages: PageModule = (ctx) => [
  {
    url: '/portal',
    audience: 'org',
    audit: true,
    render: async (p) => {
      const o = await ownOrg(ctx, p);
      const items = await portalExposures(ctx.db, o);
      const rescans = await listRescans(ctx.db, o.orgId);
      return {
        title: 'Our exposures',
        body: html`<h1>Exposures of ${o.org}</h1>
<p data-downloads="exposures"><a href="/api/my/exposures.csv" download>Download as CSV</a> · <a href="/api/my/exposures?format=jsonl" download data-download="jsonl">Download JSONL</a> (every field: findings, evidence, what to do) · <a href="/api/forensics-kit" download>Download the forensics kit</a> (one file; run <code>node tocsin-forensics.cjs --help</code> on the server)</p>
${exposuresTable(items)}
<h2>Verification rescans</h2>
${rescanForm(items)}
<p data-downloads="rescans">Every request: <a href="/api/my/rescans?format=csv" download data-download="csv">Download CSV</a> · <a href="/api/my/rescans?format=jsonl" download data-download="jsonl">Download JSONL</a></p>
${rescanTable(rescans)}`,
      };
    },
  },
  {
    url: '/portal/hosts/:ip',
    audience: 'org',
    audit: true,
    render: async (p) => {
      const o = await ownOrg(ctx, p);
      const ip = (p.req.params as { ip?: string }).ip ?? '';
      // A malformed address and another organisation's address get the same answer as an unknown one.
      const items = await portalExposures(ctx.db, o, ip).catch((e: unknown) => {
        if (e instanceof TocsinError && e.code === 'TOCSIN_ARG_INVALID') return [];
        throw e;
      });
      if (items.length === 0) throw new TocsinError('TOCSIN_NOT_FOUND', 'no host of your organisation has this address');
      const first = items[0];
      return {
        title: `Host ${first?.ip ?? ''}`,
        body: html`<h1>Host ${first?.ip ?? ''}</h1>
<p><a href="/portal">Back to our exposures</a></p>
${items.map((r) => html`<section data-service="${service(r)}"><h2>${service(r)}${r.hostname === null ? '' : html` (${r.hostname})`}</h2>
<dl><dt>Product</dt><dd>${r.edition ?? r.product ?? '—'}</dd><dt>Build</dt><dd>${r.build ?? '—'}${r.buildPrecision === 'cu' ? ' (cumulative update only)' : ''}</dd>
<dt>Seen</dt><dd>${r.firstSeen ?? '—'} to ${r.lastSeen ?? '—'} (${r.sources.join(', ')})</dd><dt>Vulnerable</dt><dd>${cveList(r.vulnerable)}</dd>
<dt>Undetermined</dt><dd>${cveList(r.indeterminate)}</dd><dt>Reported by feeds</dt><dd>${cveList(r.reportedCves)}</dd>${r.compromised ? html`<dt>Compromise</dt><dd class="error">A feed reported signs of compromise: run the forensics kit.</dd>` : ''}</dl>
<h3>Findings</h3>
${r.findings.length === 0 ? html`<p>None.</p>` : html`<table class="data"><thead><tr><th>CVE</th><th>State</th><th>Since</th></tr></thead><tbody>${r.findings.map((f) => html`<tr data-finding="${f.cve}"><td><code>${f.cve}</code></td><td>${f.state}${f.closeReason === null ? '' : html` (${f.closeReason})`}</td><td>${f.state === 'closed' ? f.closedAt : f.firstSeen}</td></tr>`)}</tbody></table>`}
<h3>Evidence</h3>
${r.evidence.length === 0 ? html`<p>No response of ours is stored (the record comes from a feed).</p>` : html`<table class="data"><thead><tr><th>Detector</th><th>Where</th><th>Excerpt</th><th>URL</th></tr></thead><tbody>${r.evidence.map((e) => html`<tr><td>${e.detector}</td><td>${e.where}${e.name === null ? '' : html` ${e.name}`}</td><td><code>${e.excerpt}</code></td><td><code>${e.url}</code></td></tr>`)}</tbody></table>`}
<h3>What to do</h3>
${r.remediation.length === 0 ? html`<p>Nothing known to fix.</p>` : html`<ul>${r.remediation.map((m) => html`<li><code>${m.cve}</code>${m.group === null ? '' : html` (${m.group})`}: ${m.action} ${m.references.map((u) => html`<a href="${/^https:\/\//.test(u) ? u : '#'}" rel="noreferrer">${u}</a> `)}</li>`)}</ul>`}
</section>`)}`,
      };
    },
  },
  {
    url: '/portal/warnings',
    audience: 'org',
    audit: true,
    render: async (p) => {
      const o = await ownOrg(ctx, p);
      const items = await portalWarnings(ctx.db, o);
      return {
        title: 'Warnings',
        body: html`<h1>Warnings to ${o.org}</h1>
<p data-downloads="warnings"><a href="/api/my/warnings?format=csv" download data-download="csv">Download CSV</a> · <a href="/api/my/warnings?format=jsonl" download data-download="jsonl">Download JSONL</a></p>
${items.length === 0 ? html`<p>We have sent your organisation no warning.</p>` : html`<table class="data"><thead><tr><th>Campaign</th><th>Ticket</th><th>Sent</th><th>Delivery</th><th>Services</th><th>Acknowledged</th></tr></thead><tbody>
${items.map((w) => html`<tr data-warning="${w.id}"><td>${w.campaign}</td><td>${w.ticket}</td><td>${w.sentAt ?? '—'}</td><td>${w.bounced ? 'bounced' : w.delivered ? 'delivered' : w.state}</td><td>${w.exposures}</td>
<td>${w.acknowledged ? html`yes, ${w.acknowledgedAt}` : html`<form data-form="ack" data-api="/api/my/acknowledge" data-method="POST" data-redirect="/portal/warnings"><input type="hidden" name="messageId" data-type="number" value="${w.id}"><button type="submit">Acknowledge</button></form>`}</td></tr>
`)}</tbody></table>`}`,
      };
    },
  },
];
