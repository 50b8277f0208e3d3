/**
 * Validation of the staged report (stage 0, stage 1, final): `unknown` in (a JSON body, a file an analyst typed),
 * a typed value out, or TOCSIN_INCIDENT_INVALID naming every bad field (`reporter.email: ...`). Pure.
 *
 * Text is kept exactly as sent (hostile strings must round-trip; whoever displays them escapes them), except that
 * NUL and other C0 controls are refused (PostgreSQL's jsonb cannot store U+0000, and no form produces them) and
 * every field has a length cap. Unknown fields are refused too: a typo must not silently drop information.
 */
import { TocsinError } from '../core/errors.js';
import {
  INCIDENT_TYPES, TLP_VALUES, type DataExfiltrated, type FinalReport, type Impact, type IncidentType, type Reporter, type Stage0, type Stage1, type Tlp,
} from './types.js';

const CVE = /^CVE-\d{4}-\d{4,7}$/;
const EMAIL = /^[^\s@<>"]{1,64}@[^\s@<>"]{1,255}$/;
/** Phone: digits, spaces and the usual separators; at least 5 digits. */
const PHONE = /^\+?[0-9 ()./-]{5,40}$/;
/** Only an explicit zone: a time without one means a different instant to every reader. */
const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;
// Controls except TAB and LF (multi-line fields) and CR (browsers send CRLF in textareas).
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
const CONTROL_ONE_LINE = /[\u0000-\u001f\u007f]/;

/** Longest values accepted (UTF-16 units). */
export const LIMITS = { short: 200, text: 20_000, item: 500, items: 200, cves: 100 } as const;

type Problems = string[];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unknownKeys(obj: Record<string, unknown>, allowed: readonly string[], prefix: string, p: Problems): void {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) p.push(`${prefix}${k.slice(0, 40)}: unknown field`);
}

function str(obj: Record<string, unknown>, key: string, field: string, p: Problems, o: { required: boolean; max: number; multiLine?: boolean }): string {
  const v = obj[key];
  if (v === undefined || v === null || v === '') {
    if (o.required) p.push(`${field}: required`);
    return '';
  }
  if (typeof v !== 'string') {
    p.push(`${field}: must be text`);
    return '';
  }
  if (v.length > o.max) p.push(`${field}: longer than ${o.max} characters`);
  if ((o.multiLine === true ? CONTROL : CONTROL_ONE_LINE).test(v)) p.push(`${field}: contains control characters`);
  if (o.required && v.trim() === '') p.push(`${field}: required`);
  return v;
}

function bool(obj: Record<string, unknown>, key: string, field: string, p: Problems, fallback?: boolean): boolean {
  const v = obj[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'boolean') {
    p.push(`${field}: must be true or false`);
    return false;
  }
  return v;
}

function list(obj: Record<string, unknown>, key: string, field: string, p: Problems): string[] {
  const v = obj[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    p.push(`${field}: must be a list`);
    return [];
  }
  if (v.length > LIMITS.items) p.push(`${field}: more than ${LIMITS.items} entries`);
  const out: string[] = [];
  v.forEach((x: unknown, i) => {
    if (typeof x !== 'string') p.push(`${field}[${i}]: must be text`);
    else if (x.length > LIMITS.item) p.push(`${field}[${i}]: longer than ${LIMITS.item} characters`);
    else if (CONTROL_ONE_LINE.test(x)) p.push(`${field}[${i}]: contains control characters`);
    else if (x.trim() !== '') out.push(x.trim());
  });
  return out;
}

function fail(what: string, p: Problems): never {
  throw new TocsinError('TOCSIN_INCIDENT_INVALID', `${what}: ${p.slice(0, 3).join('; ')}${p.length > 3 ? ` (and ${p.length - 3} more)` : ''}`, { details: p });
}

/** Upper-case, de-duplicated CVE ids; a malformed one is a problem named by its index. */
export function parseCves(values: readonly string[], field: string, p: Problems): string[] {
  const out: string[] = [];
  values.forEach((raw, i) => {
    const c = raw.trim().toUpperCase();
    if (!CVE.test(c)) p.push(`${field}[${i}]: not a CVE id (like CVE-2021-26855)`);
    else if (!out.includes(c)) out.push(c);
  });
  if (out.length > LIMITS.cves) p.push(`${field}: more than ${LIMITS.cves} CVEs`);
  return out;
}

/** An instant with its zone; returns it normalised to UTC ISO. */
export function parseZonedTime(v: string, field: string, p: Problems): string {
  const t = v.trim();
  const d = new Date(t);
  if (!ISO_WITH_ZONE.test(t) || Number.isNaN(d.getTime())) {
    p.push(`${field}: must be a date and time with its zone, like 2026-03-02T09:30+01:00`);
    return '';
  }
  return d.toISOString();
}

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const STAGE0_KEYS = ['reporter', 'orgId', 'org', 'summary', 'types', 'cves', 'campaignId', 'ticket', 'detectedAt', 'timeZone', 'ongoing', 'impact', 'helpRequested', 'tlp'] as const;

/**
 * Stage 0. `now` bounds the detection time (not more than a day in the future: clocks and zones get mixed up,
 * but a report of next week's breach is a typo).
 * @throws TocsinError TOCSIN_INCIDENT_INVALID listing every problem.
 */
export function validateStage0(input: unknown, now: Date): Stage0 {
  const p: Problems = [];
  if (!isRecord(input)) fail('stage 0 report', ['the report must be a JSON object']);
  unknownKeys(input, STAGE0_KEYS, '', p);
  const r = isRecord(input['reporter']) ? input['reporter'] : {};
  if (!isRecord(input['reporter'])) p.push('reporter: required (name, role, phone, email)');
  else unknownKeys(r, ['name', 'role', 'phone', 'email'], 'reporter.', p);
  const reporter: Reporter = {
    name: str(r, 'name', 'reporter.name', p, { required: true, max: LIMITS.short }),
    role: str(r, 'role', 'reporter.role', p, { required: true, max: LIMITS.short }),
    phone: str(r, 'phone', 'reporter.phone', p, { required: true, max: 40 }),
    email: str(r, 'email', 'reporter.email', p, { required: true, max: 320 }).trim(),
  };
  if (reporter.phone !== '' && !PHONE.test(reporter.phone.trim())) p.push('reporter.phone: digits, spaces and + ( ) . / - only, at least 5 characters');
  if (reporter.email !== '' && !EMAIL.test(reporter.email)) p.push('reporter.email: not an e-mail address');

  let orgId: number | null = null;
  const rawOrgId = input['orgId'];
  if (rawOrgId !== undefined && rawOrgId !== null) {
    if (typeof rawOrgId !== 'number' || !Number.isSafeInteger(rawOrgId) || rawOrgId <= 0) p.push('orgId: must be a positive whole number');
    else orgId = rawOrgId;
  }
  const orgText = str(input, 'org', 'org', p, { required: false, max: LIMITS.short }).trim();

  let campaignId: number | null = null;
  const rawCampaign = input['campaignId'];
  if (rawCampaign !== undefined && rawCampaign !== null) {
    if (typeof rawCampaign !== 'number' || !Number.isSafeInteger(rawCampaign) || rawCampaign <= 0) p.push('campaignId: must be a positive whole number');
    else campaignId = rawCampaign;
  }
  const ticket = str(input, 'ticket', 'ticket', p, { required: false, max: 100 }).trim();

  const types: IncidentType[] = [];
  list(input, 'types', 'types', p).forEach((t, i) => {
    const known = INCIDENT_TYPES.find((x) => x === t);
    if (known === undefined) p.push(`types[${i}]: must be one of ${INCIDENT_TYPES.join(', ')}`);
    else if (!types.includes(known)) types.push(known);
  });
  if (types.length === 0 && !p.some((x) => x.startsWith('types'))) p.push('types: pick at least one');

  const cves = parseCves(list(input, 'cves', 'cves', p), 'cves', p);
  const detectedRaw = str(input, 'detectedAt', 'detectedAt', p, { required: true, max: 40 });
  const detectedAt = detectedRaw === '' ? '' : parseZonedTime(detectedRaw, 'detectedAt', p);
  if (detectedAt !== '' && Date.parse(detectedAt) > now.getTime() + 86_400_000) p.push('detectedAt: more than a day in the future');
  const tz = str(input, 'timeZone', 'timeZone', p, { required: false, max: 64 }).trim();
  if (tz !== '' && !validTimeZone(tz)) p.push('timeZone: not an IANA time zone (like Europe/Berlin)');

  const im = isRecord(input['impact']) ? input['impact'] : {};
  if (input['impact'] !== undefined && !isRecord(input['impact'])) p.push('impact: must be an object');
  unknownKeys(im, ['confidentiality', 'integrity', 'availability', 'personalData'], 'impact.', p);
  const impact: Impact = {
    confidentiality: bool(im, 'confidentiality', 'impact.confidentiality', p, false),
    integrity: bool(im, 'integrity', 'impact.integrity', p, false),
    availability: bool(im, 'availability', 'impact.availability', p, false),
    personalData: bool(im, 'personalData', 'impact.personalData', p, false),
  };
  const tlpRaw = input['tlp'] === undefined ? 'AMBER' : input['tlp'];
  const tlp: Tlp | undefined = TLP_VALUES.find((t) => typeof tlpRaw === 'string' && t === tlpRaw.trim().toUpperCase());
  if (tlp === undefined) p.push(`tlp: must be one of ${TLP_VALUES.join(', ')}`);
  const out: Stage0 = {
    reporter, orgId, org: orgText === '' ? null : orgText,
    summary: str(input, 'summary', 'summary', p, { required: true, max: LIMITS.text, multiLine: true }),
    types, cves, campaignId, ticket: ticket === '' ? null : ticket, detectedAt, timeZone: tz === '' ? null : tz,
    ongoing: bool(input, 'ongoing', 'ongoing', p), impact,
    helpRequested: str(input, 'helpRequested', 'helpRequested', p, { required: false, max: LIMITS.text, multiLine: true }),
    tlp: tlp ?? 'AMBER',
  };
  if (p.length > 0) fail('stage 0 report', p);
  return out;
}

/** @throws TocsinError TOCSIN_INCIDENT_INVALID listing every problem. */
export function validateStage1(input: unknown): Stage1 {
  const p: Problems = [];
  if (!isRecord(input)) fail('stage 1 report', ['the report must be a JSON object']);
  unknownKeys(input, ['assets', 'indicators', 'actionsTaken', 'othersInformed', 'notes'], '', p);
  const out: Stage1 = {
    assets: list(input, 'assets', 'assets', p),
    indicators: list(input, 'indicators', 'indicators', p),
    actionsTaken: str(input, 'actionsTaken', 'actionsTaken', p, { required: false, max: LIMITS.text, multiLine: true }),
    othersInformed: list(input, 'othersInformed', 'othersInformed', p),
    notes: str(input, 'notes', 'notes', p, { required: false, max: LIMITS.text, multiLine: true }),
  };
  if (p.length === 0 && out.assets.length === 0 && out.indicators.length === 0 && out.actionsTaken.trim() === '' && out.notes.trim() === '') {
    p.push('assets: give at least one of assets, indicators, actionsTaken or notes');
  }
  if (p.length > 0) fail('stage 1 report', p);
  return out;
}

/** @throws TocsinError TOCSIN_INCIDENT_INVALID listing every problem. */
export function validateFinal(input: unknown): FinalReport {
  const p: Problems = [];
  if (!isRecord(input)) fail('final report', ['the report must be a JSON object']);
  unknownKeys(input, ['rootCause', 'resolution', 'lessonsLearned', 'dataExfiltrated'], '', p);
  const ex = input['dataExfiltrated'] ?? 'unknown';
  const dataExfiltrated: DataExfiltrated | undefined = (['yes', 'no', 'unknown'] as const).find((x) => x === ex);
  if (dataExfiltrated === undefined) p.push('dataExfiltrated: must be yes, no or unknown');
  const out: FinalReport = {
    rootCause: str(input, 'rootCause', 'rootCause', p, { required: true, max: LIMITS.text, multiLine: true }),
    resolution: str(input, 'resolution', 'resolution', p, { required: true, max: LIMITS.text, multiLine: true }),
    lessonsLearned: str(input, 'lessonsLearned', 'lessonsLearned', p, { required: false, max: LIMITS.text, multiLine: true }),
    dataExfiltrated: dataExfiltrated ?? 'unknown',
  };
  if (p.length > 0) fail('final report', p);
  return out;
}
