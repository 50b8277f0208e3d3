/**
 * `tocsin campaign follow-up ID --after 7d` (issue 9 §2): warn again, once, only the organisations still exposed.
 *
 * A follow-up is a new campaign (draft: preview, approve and send it like any other) whose selection names the
 * campaign it follows (`followUpOf`, always the first campaign, also when ID is itself a follow-up). It gets one
 * message per organisation that:
 * - had the first warning delivered (sent or acknowledged; a bounced or never-sent one is the analyst's case),
 * - was last warned (first warning or an earlier follow-up) at least `--after` ago, with no follow-up on its way,
 * - still has open findings for exposures the first warning told it about (the findings fold decides: patched,
 *   service gone, ... closed it). Acknowledging does not exempt an organisation that has not patched.
 * The message tells only the exposures still open, goes to the contact that received the first warning (the chain
 * from that step on), and refers to the first warning: In-Reply-To/References its Message-ID, "follow-up to ticket
 * X" in the text (rendered by services/campaigns.ts from the selection's `followUpOf`).
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { formatTicket, makeMessageId, type CampaignExposure, type CampaignSelection, type RecipientStep } from '../campaigns/index.js';
import { TocsinError } from '../core/errors.js';
import { campaignMessages, insertCampaign, requireCampaign, type NewMessage } from '../platform/db/campaign-store.js';
import { followUpCampaigns, followUpStateByOrg, stillOpen } from '../platform/db/mail-store.js';
import type { DbSchema, Json } from '../platform/db/schema.js';
import { foldFindings } from './findings.js';

type Db = Kysely<DbSchema>;

/** `7d`, `36h`, `90m`, `2w` → milliseconds (TOCSIN_ARG_INVALID otherwise). */
export function parseAfter(raw: string): number {
  const m = /^\s*(\d{1,6})\s*([mhdw])\s*$/i.exec(raw);
  if (m === null) throw new TocsinError('TOCSIN_ARG_INVALID', '--after takes a duration such as 7d, 36h, 2w or 90m');
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 }[m[2]!.toLowerCase() as 'm' | 'h' | 'd' | 'w'];
  return Number(m[1]) * unit;
}

export interface FollowUpOptions {
  readonly afterMs: number;
  readonly createdBy: string;
  readonly now?: Date;
  /** Fold findings first (default true), so a patch seen by the latest scan counts. */
  readonly fold?: boolean;
}

export interface FollowUpResult {
  /** The new campaign, or null when nobody needs a follow-up. */
  readonly id: number | null;
  /** The campaign followed (the first one). */
  readonly followUpOf: number;
  readonly queued: readonly string[];
  readonly skipped: readonly { readonly org: string; readonly reason: string }[];
}

function selectionOf(j: Json): CampaignSelection & { followUpOf?: number } {
  return j as unknown as CampaignSelection & { followUpOf?: number };
}

function key(ip: string, port: number | null, cve: string): string {
  return `${ip}|${port ?? ''}|${cve}`;
}

export async function followUpCampaign(db: Db, id: number, o: FollowUpOptions): Promise<FollowUpResult> {
  const asked = await requireCampaign(db, id);
  const root = selectionOf(asked.selection).followUpOf ?? asked.id;
  const c = root === asked.id ? asked : await requireCampaign(db, root);
  if (c.state === 'cancelled') throw new TocsinError('TOCSIN_CAMPAIGN_STATE', `campaign ${root} was cancelled: nothing to follow up`);
  if (o.fold !== false) await foldFindings(db);
  const now = o.now ?? new Date();
  const rows = await campaignMessages(db, root);
  const open = new Set((await stillOpen(db, root)).map((x) => `${x.messageId}|${key(x.ip, x.port, x.cve)}`));
  const earlier = await followUpStateByOrg(db, await followUpCampaigns(db, root));
  const messages: NewMessage[] = [];
  const queued: string[] = [];
  const skipped: { org: string; reason: string }[] = [];
  const days = (ms: number): string => `${Math.round((ms / 86_400_000) * 10) / 10} day(s)`;
  for (const m of rows) {
    if ((m.state !== 'sent' && m.state !== 'acknowledged') || m.sentAt === null) {
      skipped.push({ org: m.orgName, reason: `first warning ${m.state}, never delivered` });
      continue;
    }
    const exposures = (Array.isArray(m.exposures) ? m.exposures : []) as unknown as CampaignExposure[];
    const left: CampaignExposure[] = [];
    for (const e of exposures) {
      const cves = e.cves.filter((x) => open.has(`${m.id}|${key(e.ip, e.port, x.cve)}`));
      if (cves.length > 0) left.push({ ...e, cves });
    }
    if (left.length === 0) {
      skipped.push({ org: m.orgName, reason: 'no longer exposed (findings closed)' });
      continue;
    }
    const prior = earlier.get(m.orgId);
    if (prior?.pending === true) {
      skipped.push({ org: m.orgName, reason: 'a follow-up is already on its way' });
      continue;
    }
    const last = prior?.lastSentAt !== null && prior?.lastSentAt !== undefined && prior.lastSentAt > m.sentAt ? prior.lastSentAt : m.sentAt;
    if (now.getTime() - last.getTime() < o.afterMs) {
      skipped.push({ org: m.orgName, reason: `last warned ${days(now.getTime() - last.getTime())} ago` });
      continue;
    }
    const chain = ((Array.isArray(m.chain) ? m.chain : []) as unknown as RecipientStep[]).slice(m.step);
    messages.push({
      orgId: m.orgId, orgName: m.orgName, language: m.language, state: 'queued', reason: `follow-up to ticket ${m.ticket}`,
      exposures: left as unknown as Json, chain: chain as unknown as Json,
    });
    queued.push(m.orgName);
  }
  if (messages.length === 0) return { id: null, followUpOf: root, queued, skipped };
  const domainOf = rows[0]!.messageId.replace(/^<[^@]*@/, '').replace(/>$/, '');
  const newId = await insertCampaign(db, {
    name: `${c.name} (follow-up)`.slice(0, 200),
    selection: { ...selectionOf(c.selection), followUpOf: root } as unknown as Json,
    template: c.template, languageDefault: c.languageDefault, unattributed: 0, createdBy: o.createdBy,
  }, messages, (n, at) => formatTicket(at, n), (ticket) => makeMessageId(ticket, randomBytes(6).toString('hex'), `x@${domainOf}`));
  return { id: newId, followUpOf: root, queued, skipped };
}
