/**
 * `/campaigns` (every campaign with its messages per delivery state) and `/campaigns/:id` (per organisation: state,
 * recipients, SMTP reply; the burn-down of its findings as numbers and a chart; a preview form). The preview form is
 * posted by app.js to POST /api/campaigns/:id/preview; the answer is put into the [data-result] element with
 * textContent, so the message's text and its HTML part appear as text (the HTML source, never rendered).
 */
import { campaignView, campaignsOverview, type CampaignLine } from '../../services/dashboard.js';
import { TocsinError } from '../../core/errors.js';
import { html, path, type SafeHtml } from '../html.js';
import type { PageModule } from '../page.js';

/** Delivery states in the order a message goes through them (others follow by name). */
const STATE_ORDER = ['queued', 'deferred', 'sending', 'sent', 'acknowledged', 'bounced', 'uncertain', 'failed', 'suppressed', 'cancelled'];

function stateClass(state: string): string {
  if (state === 'sent' || state === 'acknowledged') return 'tag ok';
  if (state === 'bounced' || state === 'failed' || state === 'uncertain') return 'tag bad';
  return 'tag';
}

function deliveries(c: CampaignLine): SafeHtml {
  const states = Object.keys(c.deliveries).sort((a, b) => (STATE_ORDER.indexOf(a) + 1 || 99) - (STATE_ORDER.indexOf(b) + 1 || 99) || (a < b ? -1 : 1));
  return html`${states.map((s) => html`<span class="${stateClass(s)}" data-state="${s}">${s} <span data-count>${c.deliveries[s] ?? 0}</span></span>`)}`;
}

function idOf(raw: string | undefined): number {
  const n = /^\d{1,15}$/.test(raw ?? '') ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new TocsinError('TOCSIN_ARG_INVALID', 'a campaign id is a positive integer');
  return n;
}

export const campaignPages: PageModule = ({ db }) => [
  {
    url: '/campaigns',
    audience: 'staff',
    render: async () => {
      const list = await campaignsOverview(db);
      return {
        title: 'Campaigns',
        body: html`<h1>Campaigns</h1>
<p data-downloads="campaigns"><a href="/api/campaigns?format=csv" download data-download="csv">Download CSV</a> · <a href="/api/campaigns?format=jsonl" download data-download="jsonl">Download JSONL</a></p>
${list.length === 0 ? html`<p class="muted">No campaign yet (<code>tocsin campaign create</code>).</p>` : html`<table data-table="campaigns"><thead><tr><th>Id</th><th>Name</th><th>State</th><th>Created</th><th class="num">Messages</th><th>Delivery</th></tr></thead><tbody>
${list.map((c) => html`<tr data-campaign="${c.id}"><td><a href="${path`/campaigns/${c.id}`}">${c.id}</a></td><td><a href="${path`/campaigns/${c.id}`}">${c.name}</a></td><td>${c.state}</td>
<td>${c.createdAt} by ${c.createdBy}</td><td class="num">${c.messages}</td><td>${deliveries(c)}</td></tr>`)}
</tbody></table>`}`,
      };
    },
  },
  {
    url: '/campaigns/:id',
    audience: 'staff',
    audit: true,
    render: async ({ req }) => {
      const id = idOf((req.params as { id?: string }).id);
      const v = await campaignView(db, id);
      const c = v.campaign;
      const b = v.burndown;
      const last = b?.points[b.points.length - 1];
      return {
        title: `Campaign ${c.id}`,
        body: html`<h1>Campaign ${c.id}: ${c.name}</h1>
<p>State <strong>${c.state}</strong>; created ${c.createdAt} by ${c.createdBy}${c.approvedAt === null ? '' : html`; approved ${c.approvedAt}`}; template <code>${c.template}</code>.</p>
<p>${deliveries(c)}</p>
<h2>Burn-down</h2>
${b === null ? html`<p class="muted">No burn-down.</p>` : html`<section class="cards">
<div class="card"><div class="value" data-burndown="findings">${b.findings}</div><div class="label">findings warned about</div></div>
<div class="card"><div class="value" data-burndown="sent">${b.messagesSent}</div><div class="label">messages accepted</div></div>
<div class="card"><div class="value bad" data-burndown="open">${last?.open ?? 0}</div><div class="label">still open</div></div>
<div class="card"><div class="value ok" data-burndown="patched">${last?.patched ?? 0}</div><div class="label">patched</div></div>
</section>
<p><img class="chart" src="${path`/api/charts/campaigns/${c.id}/burndown.svg`}" alt="Burn-down of the campaign's findings"></p>
<table data-table="burndown"><thead><tr><th>Day</th><th class="num">still open</th><th class="num">patched</th><th class="num">notified</th><th class="num">acknowledged</th></tr></thead><tbody>
${b.points.map((p) => html`<tr><td>${p.day}</td><td class="num">${p.open}</td><td class="num">${p.patched}</td><td class="num">${p.notified}</td><td class="num">${p.acknowledged}</td></tr>`)}
</tbody></table>`}
<h2>Organisations</h2>
<table data-table="messages"><thead><tr><th>Organisation</th><th>State</th><th>Recipients</th><th class="num">Exposures</th><th>Sent</th><th>Acknowledged</th><th>Ticket</th><th>Reply</th></tr></thead><tbody>
${v.organisations.map((r) => html`<tr data-org="${r.org}"><td>${r.org}</td><td><span class="${stateClass(r.state)}">${r.state}</span>${r.reason === null ? '' : html`<br><span class="muted">${r.reason}</span>`}</td>
<td>${r.recipients.map((x) => html`<code>${x}</code> `)}</td><td class="num">${r.exposures}</td><td>${r.sentAt ?? ''}</td><td>${r.acknowledgedAt ?? ''}</td><td><code>${r.ticket}</code></td><td><code>${r.smtpReply ?? ''}</code></td></tr>`)}
</tbody></table>
<h2>Preview a message</h2>
<form data-api="${path`/api/campaigns/${c.id}/preview`}" data-method="POST" data-redirect="none">
<label for="preview-org">Organisation</label>
<select id="preview-org" name="org">${v.organisations.map((r) => html`<option value="${r.org}">${r.org}</option>`)}</select>
<button type="submit">Preview</button>
<p class="muted">Nothing is sent or stored; the acknowledgement link in a preview does not work. The HTML part is shown as source.</p>
<pre class="evidence" data-result></pre>
</form>`,
      };
    },
  },
];
