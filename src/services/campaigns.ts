/**
 * Warning campaigns (issue 9 §2): create (select exposures, group per organisation, freeze each organisation's
 * message in the outbox), preview, approve, send through the durable outbox, status, cancel, resend, acknowledge.
 * The rules are pure (src/campaigns); the outbox is src/platform/db/campaign-store.ts; SMTP is the adapter's
 * (src/platform/mail/smtp-sender.ts), passed in as a `CampaignMailer` so a test or the demo's local sink can stand in.
 *
 * Where the facts come from: the exposures (services/exposures.ts: one record per (ip, port) merging our scans
 * and every feed, with the stored attribution, refreshed first) and the constituency registry (contacts,
 * networks' abuse mailboxes, opt-outs).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import {
  applyOptOuts, compileTemplate, formatTicket, groupByOrganisation, isSendable, languageFor, makeMessageId,
  MIN_SECRET_BYTES, parseCveList, recipientChain, renderMessage, signAckToken, verifyAckToken,
  type CampaignExposure, type CampaignOrg, type OutboxState, type CampaignSelection, type ExposureFact, type OutgoingMessage, type RecipientStep,
  type SendOutcome, type TemplateSet,
} from '../campaigns/index.js';
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { dataPath, ensureDir } from '../platform/paths.js';
import {
  acknowledgeMessage, campaignMessages, getCampaign, insertCampaign, listCampaigns as listStored,
  messageByTicket, nextRetryAt, requeueMessage, requireCampaign, setCampaignState, sweepInFlight, withSendLock,
  type CampaignListRow, type CampaignRow, type MessageRow, type NewMessage,
} from '../platform/db/campaign-store.js';
import { createConstituencyStore } from '../platform/db/constituency-store.js';
import { firstWarnings } from '../platform/db/mail-store.js';
import type { DbSchema, Json } from '../platform/db/schema.js';
import { loadCveGroups } from '../products/exchange/kb/index.js';
import { listExposures, type ExposureRecord } from './exposures.js';
import { runSendLoop } from './campaign-sender.js';
import type { RefreshSummary } from './attribute.js';

type Db = Kysely<DbSchema>;

/** Templates shipped under data/templates/<name>/<lang>/. */
export const TEMPLATE_FILES = { subject: 'subject.txt', text: 'body.txt', html: 'body.html' } as const;
const TEMPLATE_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const LANG = /^[a-z]{2}$/;

function shown(s: string, max = 80): string {
  return JSON.stringify(sanitiseText(s, { max }));
}

/** The languages a template exists in (folders with all three files). */
export function templateLanguages(template: string, dir: string = dataPath('templates')): string[] {
  if (!TEMPLATE_NAME.test(template)) throw new TocsinError('TOCSIN_TEMPLATE_INVALID', `template name ${shown(template)} must be lower-case letters, digits, - and _`);
  const langs: string[] = [];
  for (const lang of ['en', 'de', 'fr', 'nl', 'it', 'es', 'pl', 'cs', 'da', 'sv', 'fi', 'pt']) {
    if (Object.values(TEMPLATE_FILES).every((f) => existsSync(join(dir, template, lang, f)))) langs.push(lang);
  }
  return langs;
}

/** Reads and compiles one language of a template; TOCSIN_TEMPLATE_INVALID when a file is missing or malformed. */
export function loadTemplateSet(template: string, language: string, dir: string = dataPath('templates')): TemplateSet {
  if (!TEMPLATE_NAME.test(template) || !LANG.test(language)) throw new TocsinError('TOCSIN_TEMPLATE_INVALID', `no template ${shown(template)} in language ${shown(language)}`);
  const read = (file: string): string => {
    const p = join(dir, template, language, file);
    try {
      return readFileSync(p, 'utf8');
    } catch {
      throw new TocsinError('TOCSIN_TEMPLATE_INVALID', `template file ${p} cannot be read`);
    }
  };
  return {
    language,
    subject: compileTemplate(`${template}/${language}/${TEMPLATE_FILES.subject}`, read(TEMPLATE_FILES.subject)),
    text: compileTemplate(`${template}/${language}/${TEMPLATE_FILES.text}`, read(TEMPLATE_FILES.text)),
    html: compileTemplate(`${template}/${language}/${TEMPLATE_FILES.html}`, read(TEMPLATE_FILES.html)),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// create

export interface CreateOptions {
  readonly name: string;
  /** CVE ids (comma lists allowed); or a group. At least one of the two. */
  readonly cves?: readonly string[];
  readonly group?: string | null;
  readonly compromisedOnly?: boolean;
  readonly source?: 'scan' | 'feed' | 'any';
  readonly sector?: string | null;
  readonly orgs?: readonly string[];
  readonly template?: string;
  readonly languageDefault?: string;
  readonly createdBy: string;
  /** TOCSIN_FALLBACK_CONTACT: warned when an organisation has no contact of its own (else it is suppressed). */
  readonly fallbackContact?: string | null;
  /** TOCSIN_MAIL_FROM's address: the domain of our Message-IDs. */
  readonly fromAddress?: string | null;
  readonly templatesDir?: string;
  readonly now?: () => Date;
  /** The attribution refresh before reading the exposures (default services/attribute.ts). */
  readonly refresh?: (db: Db) => Promise<RefreshSummary>;
}

export interface CreateResult {
  readonly id: number;
  readonly queued: number;
  readonly suppressed: number;
  readonly unattributed: number;
}

/** The selection as asked, checked; the group expanded (TOCSIN_ARG_INVALID for an unknown CVE or group). */
export function selectionOf(o: Pick<CreateOptions, 'cves' | 'group' | 'compromisedOnly' | 'source' | 'sector' | 'orgs'>): CampaignSelection {
  const { cves, invalid } = parseCveList(o.cves ?? []);
  if (invalid.length > 0) throw new TocsinError('TOCSIN_ARG_INVALID', `--cve takes CVE ids such as CVE-2021-26855; not: ${invalid.map((c) => shown(c, 40)).join(', ')}`);
  let group: string | null = null;
  const all = [...cves];
  if (o.group !== undefined && o.group !== null && o.group !== '') {
    const groups = loadCveGroups().groups;
    const g = groups.find((x) => x.name.toLowerCase() === o.group!.trim().toLowerCase());
    if (g === undefined) throw new TocsinError('TOCSIN_ARG_INVALID', `no CVE group ${shown(o.group, 40)} (see tocsin kb --groups): ${groups.map((x) => x.name).join(', ')}`);
    group = g.name;
    for (const c of g.cves) if (!all.includes(c)) all.push(c);
  }
  if (all.length === 0) throw new TocsinError('TOCSIN_ARG_INVALID', 'a campaign needs --cve ID[,ID...] or --group NAME');
  return {
    cves: all,
    group,
    compromisedOnly: o.compromisedOnly === true,
    source: o.source ?? 'any',
    sector: o.sector === undefined || o.sector === null || o.sector.trim() === '' ? null : o.sector.trim(),
    orgs: (o.orgs ?? []).map((s) => s.trim()).filter((s) => s !== ''),
  };
}

/** A published exposure record as the campaign rules read it. */
export function factOf(r: ExposureRecord): ExposureFact {
  const scanned = r.sources.includes('scan');
  return {
    ip: r.ip,
    port: r.port,
    hostname: r.hostname,
    source: scanned ? 'scan' : 'feed',
    feed: r.sources.find((s) => s !== 'scan') ?? null,
    product: r.product,
    build: r.build,
    buildPrecision: r.buildPrecision,
    vulnerable: r.vulnerable,
    indeterminate: r.indeterminate,
    reportedCves: r.reportedCves,
    compromised: r.compromised,
    seenAt: r.lastSeen ?? r.firstSeen ?? '',
    banner: null,
  };
}

async function campaignOrgs(db: Db): Promise<Map<number, CampaignOrg>> {
  const all = await createConstituencyStore(db).exportAll();
  return new Map(all.map((o) => [o.id, {
    id: o.id,
    name: o.name,
    sector: o.sector,
    contacts: o.contacts.map((c) => ({ role: c.role, email: c.email, language: c.language })),
    networkAbuseMailboxes: [...new Set(o.networks.map((n) => n.abuseMailbox).filter((m): m is string => m !== null && m !== ''))],
    optOuts: o.optOuts.map((x) => ({ condition: x.condition, expiresAt: x.expiresAt })),
  }]));
}

export async function createCampaign(db: Db, o: CreateOptions): Promise<CreateResult> {
  const name = o.name.trim();
  if (name === '' || name.length > 200) throw new TocsinError('TOCSIN_ARG_INVALID', '--name must be 1 to 200 characters');
  const sel = selectionOf(o);
  const template = o.template ?? 'warning';
  const languageDefault = (o.languageDefault ?? 'en').toLowerCase();
  const languages = templateLanguages(template, o.templatesDir);
  if (!languages.includes(languageDefault)) {
    throw new TocsinError('TOCSIN_TEMPLATE_INVALID', `template ${shown(template)} has no language ${shown(languageDefault)} (it has: ${languages.join(', ') || 'none'})`);
  }
  // Compile every language now: a broken template is refused at create, not halfway through a send.
  for (const l of languages) loadTemplateSet(template, l, o.templatesDir);
  const orgs = await campaignOrgs(db);
  for (const n of sel.orgs) {
    if (![...orgs.values()].some((x) => x.name.toLowerCase() === n.toLowerCase())) {
      throw new TocsinError('TOCSIN_ORG_NOT_FOUND', `no organisation named ${shown(n)} (see tocsin org list)`);
    }
  }
  const listing = await listExposures(db, {}, o.refresh === undefined ? {} : { refresh: o.refresh });
  const facts: ExposureFact[] = [];
  const orgOfKey = new Map<string, number | null>();
  for await (const r of listing.records) {
    const f = factOf(r);
    facts.push(f);
    orgOfKey.set(`${f.ip}|${f.port ?? ''}`, r.orgId);
  }
  const { groups, unattributed } = groupByOrganisation(facts, (f) => orgOfKey.get(`${f.ip}|${f.port ?? ''}`) ?? null, orgs, sel);
  const now = (o.now ?? (() => new Date()))();
  const fallback = o.fallbackContact === undefined || o.fallbackContact === null || o.fallbackContact.trim() === '' ? null : o.fallbackContact.trim();
  const messages: NewMessage[] = groups.map((g) => {
    const org = orgs.get(g.orgId)!;
    const chain = recipientChain(org, fallback);
    const opt = applyOptOuts(org, g.exposures, now);
    const language = languageFor(org, chain, languages, languageDefault);
    let state: NewMessage['state'] = 'queued';
    let reason: string | null = null;
    if (opt.suppressed !== null) {
      state = 'suppressed';
      reason = opt.suppressed;
    } else if (chain.length === 0) {
      state = 'suppressed';
      reason = 'no-contact';
    }
    return {
      orgId: org.id, orgName: org.name, language, state, reason,
      exposures: (opt.suppressed === null ? opt.exposures : g.exposures) as unknown as Json,
      chain: chain as unknown as Json,
    };
  });
  const fromDomainAddress = o.fromAddress ?? 'tocsin@tocsin.invalid';
  const id = await insertCampaign(db, {
    name, selection: sel as unknown as Json, template, languageDefault, unattributed, createdBy: o.createdBy,
  }, messages, (n, at) => formatTicket(at, n), (ticket) => makeMessageId(ticket, randomBytes(6).toString('hex'), fromDomainAddress));
  return { id, queued: messages.filter((m) => m.state === 'queued').length, suppressed: messages.filter((m) => m.state === 'suppressed').length, unattributed };
}

// ---------------------------------------------------------------------------------------------------------------
// rendering

/** What rendering needs besides the stored rows. */
export interface RenderContext {
  /** TOCSIN_MAIL_FROM's address (for List-Id); the SMTP adapter sets the From header itself. */
  readonly fromAddress: string;
  readonly contactUrl: string;
  /** Signs the acknowledgement links. */
  readonly ackSecret: Buffer;
  /** Base of the acknowledgement link; the token is appended. */
  readonly ackUrlBase: string;
  /** How long a link works (default 90 days). */
  readonly ackValidityMs?: number;
  readonly templatesDir?: string;
  readonly now?: () => Date;
}

function chainOf(m: MessageRow): RecipientStep[] {
  return (Array.isArray(m.chain) ? m.chain : []) as unknown as RecipientStep[];
}

function exposuresOf(m: MessageRow): CampaignExposure[] {
  return (Array.isArray(m.exposures) ? m.exposures : []) as unknown as CampaignExposure[];
}

/** The recipients of the message's current step (empty for a suppressed one). */
export function currentRecipients(m: MessageRow): readonly string[] {
  return chainOf(m)[m.step]?.emails ?? [];
}

function templateCache(c: CampaignRow, ctx: RenderContext): (lang: string) => TemplateSet {
  const cache = new Map<string, TemplateSet>();
  return (lang) => {
    let t = cache.get(lang);
    if (t === undefined) {
      t = loadTemplateSet(c.template, lang, ctx.templatesDir);
      cache.set(lang, t);
    }
    return t;
  };
}

/** A follow-up campaign (services/follow-up.ts): the first warning each organisation got, by org id; else empty. */
type FirstWarnings = ReadonlyMap<number, { readonly ticket: string; readonly messageId: string; readonly sentAt: Date | null }>;

async function firstWarningsOf(db: Db, c: CampaignRow): Promise<FirstWarnings> {
  const of = (c.selection as unknown as { followUpOf?: unknown }).followUpOf;
  return typeof of === 'number' ? firstWarnings(db, of) : new Map();
}

function renderFor(c: CampaignRow, m: MessageRow, t: TemplateSet, ctx: RenderContext, first: FirstWarnings = new Map()): OutgoingMessage {
  const sel = c.selection as unknown as CampaignSelection;
  const f = first.get(m.orgId);
  const now = (ctx.now ?? (() => new Date()))();
  const token = signAckToken(ctx.ackSecret, m.ticket, new Date(now.getTime() + (ctx.ackValidityMs ?? 90 * 86_400_000)));
  return renderMessage(t, {
    campaignId: c.id, campaignName: c.name, ticket: m.ticket, messageId: m.messageId, org: m.orgName, exposures: exposuresOf(m),
    group: sel.group, cves: sel.cves, from: ctx.fromAddress, to: currentRecipients(m), ackUrl: `${ctx.ackUrlBase}${token}`,
    contactUrl: ctx.contactUrl,
    followUpOf: f === undefined ? null : { ticket: f.ticket, messageId: f.messageId, sentAt: f.sentAt?.toISOString() ?? null },
  });
}

export interface PreviewItem {
  readonly org: string;
  readonly state: string;
  readonly reason: string | null;
  readonly message: OutgoingMessage | null;
}

/** `campaign preview`: the messages as they would be sent now (suppressed ones say why). Nothing is stored. */
export async function previewCampaign(db: Db, id: number, ctx: RenderContext, org?: string): Promise<PreviewItem[]> {
  const c = await requireCampaign(db, id);
  const rows = await campaignMessages(db, id, org);
  if (org !== undefined && rows.length === 0) throw new TocsinError('TOCSIN_CAMPAIGN_NOT_FOUND', `campaign ${id} has no message for ${shown(org)}`);
  const tpl = templateCache(c, ctx);
  const first = await firstWarningsOf(db, c);
  return rows.map((m) => ({
    org: m.orgName, state: m.state, reason: m.reason,
    message: m.state === 'suppressed' ? null : renderFor(c, m, tpl(m.language), ctx, first),
  }));
}

// ---------------------------------------------------------------------------------------------------------------
// approve, cancel, list, status, resend, acknowledge

export async function approveCampaign(db: Db, id: number, who: string): Promise<CampaignRow> {
  const c = await requireCampaign(db, id);
  if (c.state === 'cancelled') throw new TocsinError('TOCSIN_CAMPAIGN_STATE', `campaign ${id} was cancelled by ${c.cancelledBy ?? '?'}: it cannot be approved`);
  if (c.state === 'draft') await setCampaignState(db, id, 'approved', who);
  return (await getCampaign(db, id))!;
}

export async function cancelCampaign(db: Db, id: number, who: string): Promise<CampaignRow> {
  const c = await requireCampaign(db, id);
  if (c.state !== 'cancelled') await setCampaignState(db, id, 'cancelled', who);
  return (await getCampaign(db, id))!;
}

export async function listCampaigns(db: Db): Promise<CampaignListRow[]> {
  return listStored(db);
}

/** One keyset page of campaigns: ids above `afterId`, at most `limit`, in id order (a streamed download walks these). */
export async function listCampaignsAfter(db: Db, afterId: number, limit: number): Promise<CampaignListRow[]> {
  return listStored(db, { afterId, limit });
}

/** One line of `campaign status` (a published format: field names are a contract). */
export interface StatusRecord {
  readonly org: string;
  readonly recipients: readonly string[];
  readonly state: string;
  readonly ticket: string;
  readonly messageId: string;
  readonly reason: string | null;
  readonly attempts: number;
  readonly step: number;
  readonly exposures: number;
  readonly smtpReply: string | null;
  readonly nextAttemptAt: string | null;
  readonly sentAt: string | null;
  readonly acknowledgedAt: string | null;
}

export async function campaignStatus(db: Db, id: number): Promise<{ campaign: CampaignRow; records: StatusRecord[] }> {
  const campaign = await requireCampaign(db, id);
  const records = (await campaignMessages(db, id)).map((m): StatusRecord => ({
    org: m.orgName,
    recipients: m.sentTo ?? currentRecipients(m),
    state: m.state,
    ticket: m.ticket,
    messageId: m.messageId,
    reason: m.reason,
    attempts: m.attempts,
    step: m.step,
    exposures: exposuresOf(m).length,
    smtpReply: m.smtpReply,
    nextAttemptAt: m.nextAttemptAt?.toISOString() ?? null,
    sentAt: m.sentAt?.toISOString() ?? null,
    acknowledgedAt: m.acknowledgedAt?.toISOString() ?? null,
  }));
  return { campaign, records };
}

/** The analyst checked an uncertain (or bounced) message: queue it again. The next `send` sends it. */
export async function resendMessage(db: Db, id: number, org: string, who: string): Promise<MessageRow> {
  await requireCampaign(db, id);
  const [m] = await campaignMessages(db, id, org);
  if (m === undefined) throw new TocsinError('TOCSIN_CAMPAIGN_NOT_FOUND', `campaign ${id} has no message for ${shown(org)}`);
  if (m.state !== 'uncertain' && m.state !== 'bounced') {
    throw new TocsinError('TOCSIN_CAMPAIGN_STATE', `the message to ${shown(org)} is ${m.state}: only an uncertain or bounced message is resent`);
  }
  await requeueMessage(db, m.id, who);
  return (await campaignMessages(db, id, org))[0]!;
}

/** `tocsin ack TOKEN` (and later the web link): marks the ticket's message acknowledged. */
export async function acknowledge(db: Db, token: string, secret: Buffer, now: Date = new Date()): Promise<{ ticket: string; org: string; first: boolean }> {
  const check = verifyAckToken(secret, token, now);
  if (!check.ok) throw new TocsinError('TOCSIN_ACK_TOKEN_INVALID', `acknowledgement token refused: ${check.reason}`);
  const m = await messageByTicket(db, check.claims.ticket);
  if (m === null) throw new TocsinError('TOCSIN_ACK_TOKEN_INVALID', `no message has ticket ${check.claims.ticket}`);
  const first = await acknowledgeMessage(db, m.id, now);
  return { ticket: m.ticket, org: m.orgName, first };
}

/**
 * The acknowledgement secret: TOCSIN_ACK_SECRET (at least 16 bytes), else `ack-secret` under TOCSIN_HOME, made
 * with 32 random bytes on first use (mode 0600) so links stay valid across runs.
 */
export async function ackSecret(env: NodeJS.ProcessEnv, home: string): Promise<Buffer> {
  const given = env.TOCSIN_ACK_SECRET;
  if (given !== undefined && given !== '') {
    const b = Buffer.from(given, 'utf8');
    if (b.length < MIN_SECRET_BYTES) throw new TocsinError('TOCSIN_CONFIG_INVALID', `TOCSIN_ACK_SECRET must have at least ${MIN_SECRET_BYTES} bytes`);
    return b;
  }
  await ensureDir(home, 0o700);
  const file = join(home, 'ack-secret');
  if (existsSync(file)) return Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
  const secret = randomBytes(32);
  writeFileSync(file, `${secret.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return secret;
}

// ---------------------------------------------------------------------------------------------------------------
// send

/** A message as the SMTP adapter takes it (src/platform/mail/message.ts). */
export interface MailerMessage {
  readonly to: readonly { readonly address: string }[];
  readonly subject: string;
  readonly text: string;
  readonly html?: string;
  readonly attachments?: readonly { readonly filename: string; readonly contentType: string; readonly content: string }[];
  readonly messageId: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** The SMTP adapter's outcome (src/platform/mail/smtp-sender.ts), the fields the outbox reads. */
export type MailerOutcome =
  | { readonly kind: 'accepted'; readonly response: string }
  | { readonly kind: 'transient'; readonly code: number | null; readonly response: string }
  | { readonly kind: 'permanent'; readonly code: number; readonly response: string }
  | { readonly kind: 'uncertain'; readonly detail: string };

export interface CampaignMailer {
  send(message: MailerMessage): Promise<MailerOutcome>;
}

export function outcomeOf(o: MailerOutcome): SendOutcome {
  const reply = (s: string): string => sanitiseText(s, { max: 500, replacement: ' ' });
  switch (o.kind) {
    case 'accepted': return { kind: 'accepted', reply: reply(o.response) };
    case 'transient': return { kind: 'transient', reply: reply(o.code === null || o.response.startsWith(String(o.code)) ? o.response : `${o.code} ${o.response}`) };
    case 'permanent': return { kind: 'permanent', reply: reply(o.response.startsWith(String(o.code)) ? o.response : `${o.code} ${o.response}`) };
    case 'uncertain': return { kind: 'uncertain', reply: reply(o.detail) };
  }
}

export interface SendOptions extends RenderContext {
  /** Render and count, send nothing, change nothing. */
  readonly dryRun?: boolean;
  /** Messages per second overall (0 = as fast as the relay takes them). */
  readonly ratePerSecond?: number;
  /** Messages per recipient domain per minute (0 = unlimited). */
  readonly perDomainPerMinute?: number;
  /** SMTP transactions at once (default 8, services/campaign-sender.ts); the mailer's pool should allow as many. */
  readonly concurrency?: number;
  /** Stops between two messages (Ctrl+C). */
  readonly signal?: AbortSignal;
  readonly sleep?: (ms: number) => Promise<void>;
  onMessage?(org: string, state: string, reply: string | null): void;
}

export interface SendSummary {
  readonly campaignId: number;
  readonly dryRun: boolean;
  /** Messages looked at this run. */
  readonly considered: number;
  readonly sent: number;
  readonly deferred: number;
  readonly bounced: number;
  /** Moved down the chain after a 5xx and still queued (sent to the next step in this run when it came up). */
  readonly rerouted: number;
  readonly uncertain: number;
  /** Found `sending` at the start (a killed sender): now uncertain. */
  readonly sweptUncertain: readonly string[];
  readonly nextRetryAt: string | null;
  readonly stopped: boolean;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Sends what is due: queued messages and deferred ones whose retry time has come, one SMTP transaction at a time,
 * each claimed (`sending`, committed) before it starts and settled after. Holds the campaign's send lock
 * (TOCSIN_CAMPAIGN_BUSY when another process sends it). A message moved down its chain by a 5xx is sent to the
 * next step in the same run. Deferred ones are left for a later `send` (their time is in the summary).
 */
export async function sendCampaign(db: Db, id: number, mailer: CampaignMailer | null, o: SendOptions): Promise<SendSummary> {
  const c = await requireCampaign(db, id);
  if (c.state === 'cancelled') throw new TocsinError('TOCSIN_CAMPAIGN_STATE', `campaign ${id} was cancelled: nothing is sent`);
  if (c.state !== 'approved' && o.dryRun !== true) throw new TocsinError('TOCSIN_CAMPAIGN_STATE', `campaign ${id} is not approved: preview it, then \`tocsin campaign approve ${id}\``);
  const now = o.now ?? (() => new Date());
  const tpl = templateCache(c, o);
  const first = await firstWarningsOf(db, c);
  if (o.dryRun === true) {
    const rows = (await campaignMessages(db, id)).filter((m) => isSendable(m.state as OutboxState, m.nextAttemptAt, now()));
    for (const m of rows) {
      renderFor(c, m, tpl(m.language), o, first);
      o.onMessage?.(m.orgName, 'would-send', null);
    }
    return { campaignId: id, dryRun: true, considered: rows.length, sent: 0, deferred: 0, bounced: 0, rerouted: 0, uncertain: 0, sweptUncertain: [], nextRetryAt: null, stopped: false };
  }
  if (mailer === null) throw new TocsinError('TOCSIN_CONFIG_INVALID', 'sending needs TOCSIN_SMTP_URL and TOCSIN_MAIL_FROM');
  return withSendLock(db, id, async () => {
    const swept = await sweepInFlight(db, id);
    // The loop itself (concurrent transactions, batched claims and outcome writes): services/campaign-sender.ts.
    const r = await runSendLoop(db, id, {
      mailer,
      render: (m) => {
        const rendered = renderFor(c, m, tpl(m.language), o, first);
        return { subject: rendered.subject, text: rendered.text, html: rendered.html, attachments: rendered.attachments, messageId: rendered.messageId, headers: rendered.headers };
      },
      recipients: currentRecipients,
      steps: (m) => chainOf(m).length,
      outcomeOf,
    }, { ...o, sleep: o.sleep ?? defaultSleep, now });
    const retry = await nextRetryAt(db, id);
    return { campaignId: id, dryRun: false, ...r, sweptUncertain: swept, nextRetryAt: retry?.toISOString() ?? null };
  });
}
