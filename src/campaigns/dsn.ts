/**
 * What came back to a campaign's mailbox, classified (issue 9 §2, delivery tracking). Pure: text in, verdict out.
 *
 * - A delivery status notification (RFC 3464): `multipart/report; report-type=delivery-status` with a
 *   `message/delivery-status` part (per-message fields, then one block per recipient: Final-Recipient, Action,
 *   Status, Diagnostic-Code) and usually the returned message or its headers (`message/rfc822`,
 *   `text/rfc822-headers`), where our Message-ID and ticket are found. We read the MIME structure ourselves:
 *   mailparser folds the delivery-status part into the text body, and the fields are the whole point.
 * - A reply: In-Reply-To / References naming a Message-ID, or a ticket number (YYYYMMDD-NNNNNNNN) in the subject.
 * - An auto-reply (Auto-Submitted other than `no`, X-Autoreply / X-Autorespond, Precedence auto_reply, an
 *   out-of-office subject): linked like a reply, but never an acknowledgement.
 * A bounce without a machine-readable report (old qmail style) is `bounce-unparsed`: noted, never acted on, since
 * guessing the failed recipient from prose could move a warning away from a mailbox that got it.
 *
 * Everything here is hostile input: every loop is bounded, every field capped, nothing throws on malformed MIME.
 */
import { ticketsIn } from './ticket.js';

/** Caps: a part or header block beyond these is cut (the fields that matter come first). */
export const MAX_HEADER_BLOCK = 64 * 1024;
const MAX_PARTS = 64;
const MAX_DEPTH = 4;
const MAX_RECIPIENTS = 100;
const MAX_FIELD = 1000;

export type DsnAction = 'failed' | 'delayed' | 'delivered' | 'relayed' | 'expanded' | 'unknown';

export interface DsnRecipient {
  /** The address the report is about (Final-Recipient, without its `rfc822;` type), lower case. */
  readonly finalRecipient: string | null;
  readonly originalRecipient: string | null;
  readonly action: DsnAction;
  /** `5.1.1`; null when absent or malformed. */
  readonly status: string | null;
  readonly statusClass: 2 | 4 | 5 | null;
  readonly diagnostic: string | null;
  /**
   * The delivery to this recipient is over and failed: `Action: failed`. With a 5.x.x status the address refused
   * it; with a 4.x.x one the MTA gave up retrying (e.g. 4.4.7 expired in queue): either way nobody there got it.
   */
  readonly failed: boolean;
}

export interface OriginalRef {
  readonly messageId: string | null;
  readonly subject: string | null;
  /** X-Tocsin-Ticket of the returned message, else a ticket in its subject. */
  readonly ticket: string | null;
}

export type InboundKind = 'dsn' | 'reply' | 'auto-reply' | 'bounce-unparsed' | 'other';

export interface Inbound {
  readonly kind: InboundKind;
  /** The mail's own Message-ID (angle brackets kept), or null. */
  readonly messageId: string | null;
  /** Message-IDs this mail refers to: the returned message's (DSN), In-Reply-To then References (reply). */
  readonly refersTo: readonly string[];
  /** Ticket numbers found (X-Tocsin-Ticket of the returned message, subjects), in order, no duplicates. */
  readonly tickets: readonly string[];
  /** DSN: one entry per recipient block. */
  readonly recipients: readonly DsnRecipient[];
  readonly reportingMta: string | null;
  readonly original: OriginalRef | null;
  /** Why it counts as an auto-reply (the header or subject that said so), else null. */
  readonly autoReason: string | null;
}

export interface HeaderField {
  /** Lower case. */
  readonly name: string;
  /** Unfolded, trimmed, capped. */
  readonly value: string;
}

function cap(s: string, max = MAX_FIELD): string {
  return s.length > max ? s.slice(0, max) : s;
}

/** Splits a MIME entity (latin1 text) into its header block and body at the first empty line. */
export function splitEntity(entity: string): { head: string; body: string } {
  const m = /\r?\n\r?\n/.exec(entity.length > MAX_HEADER_BLOCK ? entity.slice(0, MAX_HEADER_BLOCK) : entity);
  if (m === null) {
    // No empty line: all head when it looks like headers, else all body.
    return /^[!-9;-~]+:/.test(entity) ? { head: entity.slice(0, MAX_HEADER_BLOCK), body: '' } : { head: '', body: entity };
  }
  return { head: entity.slice(0, m.index), body: entity.slice(m.index + m[0].length) };
}

/** Header fields of a block (RFC 5322 unfolding); lines that are not fields are skipped. */
export function parseHeaderBlock(head: string): HeaderField[] {
  const out: HeaderField[] = [];
  const lines = head.slice(0, MAX_HEADER_BLOCK).split(/\r?\n/);
  let cur: { name: string; value: string } | null = null;
  for (const line of lines) {
    if (/^[ \t]/.test(line) && cur !== null) {
      if (cur.value.length < MAX_FIELD * 4) cur.value += ` ${line.trim()}`;
      continue;
    }
    if (cur !== null) out.push({ name: cur.name, value: cap(cur.value.trim(), MAX_FIELD * 4) });
    const m = /^([!-9;-~]{1,76}):[ \t]*(.*)$/.exec(line);
    cur = m === null ? null : { name: m[1]!.toLowerCase(), value: m[2]! };
  }
  if (cur !== null) out.push({ name: cur.name, value: cap(cur.value.trim(), MAX_FIELD * 4) });
  return out;
}

function first(fields: readonly HeaderField[], name: string): string | null {
  return fields.find((f) => f.name === name)?.value ?? null;
}

/** `type/subtype` (lower case) and its parameters (names lower case; quoted values unquoted). */
export function parseContentType(value: string | null): { type: string; params: Map<string, string> } {
  const params = new Map<string, string>();
  if (value === null) return { type: 'text/plain', params };
  const [typePart, ...rest] = value.split(';');
  const re = /^\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;]*))/;
  let tail = rest.join(';');
  for (let i = 0; i < 32 && tail.length > 0; i++) {
    const m = re.exec(tail);
    if (m !== null) params.set(m[1]!.toLowerCase(), (m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1'));
    const next = tail.indexOf(';', m === null ? 0 : m[0].length);
    if (next < 0) break;
    tail = tail.slice(next + 1);
  }
  return { type: (typePart ?? '').trim().toLowerCase() || 'text/plain', params };
}

interface Part {
  readonly fields: readonly HeaderField[];
  readonly type: string;
  readonly body: string;
}

function decodeBody(fields: readonly HeaderField[], body: string): string {
  const cte = (first(fields, 'content-transfer-encoding') ?? '').trim().toLowerCase();
  if (cte === 'base64') return Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64').toString('latin1');
  if (cte === 'quoted-printable') {
    return body.replace(/=\r?\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
  return body;
}

/** The leaf parts of an entity, depth-first, bounded in depth and count. */
function leafParts(entity: string, depth: number, out: Part[]): void {
  if (out.length >= MAX_PARTS) return;
  const { head, body } = splitEntity(entity);
  const fields = parseHeaderBlock(head);
  const ct = parseContentType(first(fields, 'content-type'));
  const boundary = ct.params.get('boundary');
  if (ct.type.startsWith('multipart/') && boundary !== undefined && boundary !== '' && boundary.length <= 200 && depth < MAX_DEPTH) {
    const delim = `--${boundary}`;
    const chunks = body.split(delim);
    // chunks[0] is the preamble; a chunk starting with `--` is the epilogue after the close delimiter.
    for (let i = 1; i < chunks.length && out.length < MAX_PARTS; i++) {
      const c = chunks[i]!;
      if (c.startsWith('--')) break;
      leafParts(c.replace(/^[ \t]*\r?\n/, ''), depth + 1, out);
    }
    return;
  }
  out.push({ fields, type: ct.type, body: decodeBody(fields, body) });
}

function bareAddress(v: string | null): string | null {
  if (v === null) return null;
  // `rfc822; user@host` → `user@host` (other address types kept whole).
  const m = /^\s*([A-Za-z0-9-]+)\s*;\s*(.*)$/.exec(v);
  const addr = (m !== null && m[1]!.toLowerCase() === 'rfc822' ? m[2]! : m !== null ? m[2]! : v).trim().replace(/^<(.*)>$/, '$1');
  return addr === '' ? null : cap(addr.toLowerCase(), 320);
}

const ACTIONS: readonly DsnAction[] = ['failed', 'delayed', 'delivered', 'relayed', 'expanded'];

/** The fields of a `message/delivery-status` body: the per-message block, then one per recipient. */
export function parseDeliveryStatus(body: string): { reportingMta: string | null; recipients: DsnRecipient[] } {
  const blocks = body.split(/\r?\n(?:[ \t]*\r?\n)+/).map((b) => parseHeaderBlock(b.replace(/^\s*\r?\n/, ''))).filter((b) => b.length > 0);
  let reportingMta: string | null = null;
  const recipients: DsnRecipient[] = [];
  for (const b of blocks) {
    const rm = first(b, 'reporting-mta');
    if (rm !== null && reportingMta === null) reportingMta = cap(rm.replace(/^\s*dns\s*;\s*/i, ''), 255);
    const final = first(b, 'final-recipient');
    const actionRaw = first(b, 'action');
    if (final === null && actionRaw === null) continue;
    if (recipients.length >= MAX_RECIPIENTS) break;
    const actionWord = (actionRaw ?? '').trim().toLowerCase().split(/[\s(]/)[0] ?? '';
    const action: DsnAction = (ACTIONS as readonly string[]).includes(actionWord) ? actionWord as DsnAction : 'unknown';
    const sm = /^\s*([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(first(b, 'status') ?? '');
    const status = sm === null ? null : `${sm[1]}.${sm[2]}.${sm[3]}`;
    const statusClass = sm === null ? null : (Number(sm[1]) as 2 | 4 | 5);
    const diag = first(b, 'diagnostic-code');
    recipients.push({
      finalRecipient: bareAddress(final),
      originalRecipient: bareAddress(first(b, 'original-recipient')),
      action,
      status,
      statusClass,
      diagnostic: diag === null ? null : cap(diag.replace(/^\s*smtp\s*;\s*/i, '')),
      failed: action === 'failed',
    });
  }
  return { reportingMta, recipients };
}

/** Message-IDs in a header value (`<a@b> <c@d>`), capped in number and length. */
export function messageIdsIn(value: string | null): string[] {
  if (value === null) return [];
  return [...value.matchAll(/<([^<>\s]{1,250})>/g)].slice(0, 50).map((m) => `<${m[1]!}>`);
}

function originalOf(part: Part): OriginalRef {
  const fields = parseHeaderBlock(splitEntity(part.body).head);
  const subject = first(fields, 'subject');
  const xt = first(fields, 'x-tocsin-ticket');
  const ticket = (xt !== null ? ticketsIn(xt)[0] : undefined) ?? (subject !== null ? ticketsIn(subject)[0] : undefined) ?? null;
  return { messageId: messageIdsIn(first(fields, 'message-id'))[0] ?? null, subject: subject === null ? null : cap(subject), ticket };
}

const OOO_SUBJECT = /\b(out of (the )?office|automatic reply|auto(matic)?[- ]?re(ply|sponse)|autoreply|abwesenheit|abwesend|automatische antwort|r[ée]ponse automatique|absence|afwezig|vacation|on leave)\b/i;

/** Why a mail is an automatic reply (RFC 3834 and the common vendor markers), or null. */
export function autoReplyReason(fields: readonly HeaderField[], subject: string | null): string | null {
  const as = first(fields, 'auto-submitted');
  if (as !== null && as.trim().toLowerCase().split(/[\s;]/)[0] !== 'no') return `Auto-Submitted: ${cap(as, 60)}`;
  for (const h of ['x-autoreply', 'x-autorespond', 'x-auto-response', 'x-autogenerated']) {
    if (first(fields, h) !== null) return h.replace(/(^|-)([a-z])/g, (_, d: string, c: string) => `${d}${c.toUpperCase()}`);
  }
  const prec = first(fields, 'precedence');
  if (prec !== null && /auto_reply/i.test(prec)) return `Precedence: ${cap(prec, 40)}`;
  if (subject !== null && OOO_SUBJECT.test(subject)) return 'out-of-office subject';
  return null;
}

function uniq<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

/**
 * Classifies one mail. `raw` is the message as read (bytes as latin1: MIME structure is ASCII); `subject` the
 * decoded subject when the caller has it (RFC 2047 words), else the raw header is used.
 */
export function classifyInbound(raw: string, decodedSubject?: string | null): Inbound {
  const { head } = splitEntity(raw);
  const fields = parseHeaderBlock(head);
  const messageId = messageIdsIn(first(fields, 'message-id'))[0] ?? null;
  const subject = decodedSubject ?? first(fields, 'subject');
  const ct = parseContentType(first(fields, 'content-type'));
  const base = { messageId, reportingMta: null, original: null, autoReason: null } as const;

  const parts: Part[] = [];
  if (ct.type.startsWith('multipart/')) leafParts(raw, 0, parts);
  const statusPart = parts.find((p) => p.type === 'message/delivery-status' || p.type === 'message/global-delivery-status');
  if (statusPart !== undefined) {
    const { reportingMta, recipients } = parseDeliveryStatus(statusPart.body);
    const returned = parts.find((p) => p.type === 'message/rfc822' || p.type === 'text/rfc822-headers' || p.type === 'message/global' || p.type === 'message/global-headers');
    const original = returned === undefined ? null : originalOf(returned);
    const tickets = uniq([...(original?.ticket !== null && original?.ticket !== undefined ? [original.ticket] : []), ...ticketsIn(subject ?? '')]);
    return { ...base, kind: 'dsn', reportingMta, recipients, original, tickets, refersTo: original?.messageId === null || original === null ? [] : [original.messageId] };
  }

  const refersTo = uniq([...messageIdsIn(first(fields, 'in-reply-to')), ...messageIdsIn(first(fields, 'references'))]);
  const tickets = uniq(ticketsIn(subject ?? ''));
  const from = (first(fields, 'from') ?? '').toLowerCase();
  const bounceSender = /\b(mailer-daemon|postmaster)@/.test(from) || /^\s*<?>?\s*$/.test(first(fields, 'return-path') ?? 'x');
  if (ct.type === 'multipart/report' || (bounceSender && /undeliver|delivery (status|failure)|returned mail|failure notice|non[- ]?delivery/i.test(subject ?? ''))) {
    return { ...base, kind: 'bounce-unparsed', recipients: [], tickets, refersTo };
  }
  if (refersTo.length === 0 && tickets.length === 0) return { ...base, kind: 'other', recipients: [], tickets, refersTo };
  const autoReason = autoReplyReason(fields, subject);
  return { ...base, kind: autoReason === null ? 'reply' : 'auto-reply', autoReason, recipients: [], tickets, refersTo };
}
