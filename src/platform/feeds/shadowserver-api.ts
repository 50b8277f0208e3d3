/**
 * The HTTP client of Shadowserver's reports API: the only code that talks to it.
 *
 * The API's shape, as far as public sources show it (not an official specification; where unsure, it says so):
 * - Base URL `https://transform.shadowserver.org/api2/`; a method is a path under it (`reports/list`,
 *   `reports/download`, `test/ping`), always a POST. Sources: The-Shadowserver-Foundation/api_utils
 *   `call-api.py` and README (`uri = https://transform.shadowserver.org/api2/`), IntelMQ's
 *   `intelmq/bots/collectors/shadowserver/collector_reports_api.py` (`APIROOT`).
 * - The body is a JSON object carrying `"apikey"` and the method's parameters; the header `HMAC2` is the
 *   lower-case hex HMAC-SHA256 of the raw body bytes keyed with the secret (call-api.py: `hmac.new(secret,
 *   request_bytes, hashlib.sha256).hexdigest()`; IntelMQ `_headers`). So the body is serialised once and the
 *   same bytes are signed and sent.
 * - `reports/list` takes `date` (`YYYY-MM-DD`, or a range `YYYY-MM-DD:YYYY-MM-DD` as IntelMQ sends), optional
 *   `reports` (names of the subscriber's report lists) and `type` (report-manager.py); it answers a JSON array of
 *   `{id, type, file, report, timestamp, url}`, where `timestamp` is the report's date (report-manager.py uses
 *   it as `report_date`) and `file` the CSV's name (`YYYY-MM-DD-TYPE-....csv`). An error is answered as a JSON
 *   object `{"error": "..."}` (IntelMQ checks `'error' in reports`); with which HTTP status is not documented,
 *   so both a non-2xx status and a 2xx `{"error"}` are failures here.
 * - `reports/download` takes `id` and answers the report's CSV (IntelMQ's older collector); Shadowserver's own
 *   report-manager.py fetches `https://dl.shadowserver.org/<id>` unauthenticated instead. We use the signed POST
 *   so one base URL (and one test double) serves both calls. Unsure: how a bad id is answered (assumed a JSON
 *   `{"error"}` or a 4xx), and how a wrong key or signature is answered (assumed 401/403, or an `error` text
 *   naming the key, HMAC or signature: both map to `auth`).
 * - How `type` filters (one type or several) is not documented: the collector filters the list itself.
 *
 * The peer is treated as hostile (a compromised proxy or a wrong URL): every response is capped in bytes and in
 * time (a total deadline and an idle timeout between chunks), redirects are refused (a redirect would carry the
 * signed key elsewhere), and failures are values with a `retryable` flag, not exceptions: the collector decides.
 */
import { createHash, createHmac } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { TocsinError } from '../../core/errors.js';
import { sanitiseText } from '../../core/text.js';

export const DEFAULT_SHADOWSERVER_URL = 'https://transform.shadowserver.org/api2/';

export interface ShadowserverSettings {
  /** Base URL ending with `/`; methods are resolved against it. */
  readonly baseUrl: string;
  readonly apiKey: string;
  readonly secret: string;
}

/**
 * TOCSIN_SHADOWSERVER_KEY, TOCSIN_SHADOWSERVER_SECRET (both required) and TOCSIN_SHADOWSERVER_URL (https, or
 * http to a loopback address only: the key travels in the body). Every problem is listed, none of the secrets.
 */
export function inspectShadowserverSettings(env: NodeJS.ProcessEnv): { readonly settings: ShadowserverSettings | null; readonly problems: readonly string[] } {
  const problems: string[] = [];
  const apiKey = (env.TOCSIN_SHADOWSERVER_KEY ?? '').trim();
  const secret = env.TOCSIN_SHADOWSERVER_SECRET ?? '';
  if (apiKey === '') problems.push('TOCSIN_SHADOWSERVER_KEY is not set (the API key Shadowserver gave you)');
  else if (/[\0-\x1f\x7f"\\]/.test(apiKey)) problems.push('TOCSIN_SHADOWSERVER_KEY contains control characters, quotes or backslashes');
  if (secret === '') problems.push('TOCSIN_SHADOWSERVER_SECRET is not set (the secret that signs each request)');
  const raw = env.TOCSIN_SHADOWSERVER_URL !== undefined && env.TOCSIN_SHADOWSERVER_URL !== '' ? env.TOCSIN_SHADOWSERVER_URL : DEFAULT_SHADOWSERVER_URL;
  let baseUrl: string | null = null;
  try {
    const u = new URL(raw);
    const loopback = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost)$/i.test(u.hostname);
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) {
      problems.push(`TOCSIN_SHADOWSERVER_URL must be https:// (plain http only to a loopback address), got ${u.protocol}//`);
    } else if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') {
      problems.push('TOCSIN_SHADOWSERVER_URL must not carry credentials, a query or a fragment');
    } else {
      if (!u.pathname.endsWith('/')) u.pathname += '/';
      baseUrl = u.toString();
    }
  } catch {
    problems.push(`TOCSIN_SHADOWSERVER_URL is not a valid URL (default ${DEFAULT_SHADOWSERVER_URL})`);
  }
  const settings = problems.length === 0 && baseUrl !== null ? { baseUrl, apiKey, secret } : null;
  return { settings, problems };
}

/** The settings, or TOCSIN_CONFIG_INVALID listing every problem. */
export function readShadowserverSettings(env: NodeJS.ProcessEnv): ShadowserverSettings {
  const { settings, problems } = inspectShadowserverSettings(env);
  if (settings === null) throw new TocsinError('TOCSIN_CONFIG_INVALID', `the Shadowserver API collector is not configured (${problems.length} problem(s))`, { details: problems });
  return settings;
}

/** The `HMAC2` header value: hex HMAC-SHA256 of the exact body bytes, keyed with the secret. */
export function signBody(body: string | Buffer, secret: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** One entry of `reports/list`, validated (the peer's strings are kept raw here; sanitise on output). */
export interface ReportEntry {
  readonly id: string;
  readonly type: string;
  readonly file: string;
  /** The report list (subscription) it belongs to. */
  readonly report: string;
  /** The report's date, `YYYY-MM-DD` (the API's `timestamp`). */
  readonly date: string;
  readonly url: string | null;
}

export type FailureKind = 'auth' | 'http' | 'timeout' | 'truncated' | 'bad-json' | 'too-large' | 'network' | 'api-error' | 'io';

/** Why a call failed; `retryable` when trying again later may help (5xx, 429, timeouts, cut or garbled bodies, network). */
export interface ApiFailure {
  readonly kind: FailureKind;
  readonly retryable: boolean;
  /** Sanitised, short: safe to print. */
  readonly message: string;
  readonly status: number | null;
}

export type ApiResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly failure: ApiFailure };

export interface ApiLimits {
  /** Largest `reports/list` answer (and any JSON error answer) read. */
  readonly listMaxBytes: number;
  /** Largest report downloaded. */
  readonly downloadMaxBytes: number;
  /** Whole request, headers and body. */
  readonly deadlineMs: number;
  /** Longest silence: until the headers, and between two chunks of the body. */
  readonly idleMs: number;
}

export const DEFAULT_LIMITS: ApiLimits = {
  listMaxBytes: 16 * 1024 * 1024,
  // A national CERT's biggest daily reports are some hundreds of MB.
  downloadMaxBytes: 2 * 1024 * 1024 * 1024,
  deadlineMs: 30 * 60_000,
  idleMs: 60_000,
};

const ID = /^[A-Za-z0-9._:-]{1,200}$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

export interface ListQuery {
  /** `YYYY-MM-DD` or `YYYY-MM-DD:YYYY-MM-DD`. */
  readonly date: string;
  readonly reports?: readonly string[];
}

export interface Downloaded {
  readonly bytes: number;
  readonly sha256: string;
}

/** What one call read: a body in memory, or a body streamed to a file. */
type Body = { readonly kind: 'memory'; readonly body: Buffer } | { readonly kind: 'file'; readonly file: Downloaded };

function failure(kind: FailureKind, retryable: boolean, message: string, status: number | null = null): { ok: false; failure: ApiFailure } {
  return { ok: false, failure: { kind, retryable, message: sanitiseText(message, { max: 300 }), status } };
}

/** An `error` text from the API that names the credentials or the signature. A guess: the texts are not documented. */
const AUTH_TEXT = /hmac|api ?key|signature|secret|auth|forbidden|credential/i;

export class ShadowserverClient {
  private readonly limits: ApiLimits;

  constructor(private readonly settings: ShadowserverSettings, limits: Partial<ApiLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** `reports/list`: the entries, each validated; an entry the peer garbled is left out and counted. */
  async listReports(q: ListQuery): Promise<ApiResult<{ readonly reports: readonly ReportEntry[]; readonly malformed: number }>> {
    const params: Record<string, unknown> = { date: q.date };
    if (q.reports !== undefined && q.reports.length > 0) params.reports = q.reports;
    const r = await this.call('reports/list', params, null);
    if (!r.ok) return r;
    if (r.value.kind !== 'memory') return failure('api-error', false, 'reports/list: unexpected answer');
    const json = parseJson(r.value.body.toString('utf8'));
    if (json === undefined) return failure('bad-json', true, 'reports/list: the answer is not JSON');
    const err = errorOf(json);
    if (err !== null) return err;
    if (!Array.isArray(json)) return failure('bad-json', true, 'reports/list: the answer is not a JSON array');
    const reports: ReportEntry[] = [];
    let malformed = 0;
    for (const item of json as unknown[]) {
      const e = entryOf(item);
      if (e === null) malformed++;
      else reports.push(e);
    }
    return { ok: true, value: { reports, malformed } };
  }

  /**
   * `reports/download` of one id, streamed to `dest` through `dest.part` (renamed when complete, so a cut
   * download never looks like a report). Returns the size and sha256 of what was written.
   */
  async downloadReport(id: string, dest: string): Promise<ApiResult<Downloaded>> {
    if (!ID.test(id)) return failure('api-error', false, `not a report id: ${JSON.stringify(id.slice(0, 60))}`);
    const part = `${dest}.part`;
    const r = await this.call('reports/download', { id }, part);
    if (!r.ok || r.value.kind === 'memory') await rm(part, { force: true });
    if (!r.ok) return r;
    if (r.value.kind === 'memory') {
      // A JSON answer instead of a report: an error, read into memory, not written.
      const json = parseJson(r.value.body.toString('utf8'));
      if (json === undefined) return failure('bad-json', true, `reports/download ${id}: a JSON answer that is not JSON`);
      return errorOf(json) ?? failure('api-error', false, `reports/download ${id}: a JSON answer instead of a report`);
    }
    try {
      await rename(part, dest);
    } catch (e) {
      await rm(part, { force: true });
      return failure('io', false, `cannot store ${dest}: ${e instanceof Error ? e.message : String(e)}`);
    }
    return { ok: true, value: r.value.file };
  }

  /**
   * One signed POST. With `toFile`, a non-JSON 2xx body is streamed there, capped at downloadMaxBytes;
   * otherwise (and for JSON answers) the body is read into memory, capped at listMaxBytes.
   */
  private async call(method: string, params: Record<string, unknown>, toFile: string | null): Promise<ApiResult<Body>> {
    const body = JSON.stringify({ apikey: this.settings.apiKey, ...params });
    const url = new URL(method, this.settings.baseUrl);
    const ctl = new AbortController();
    let why: 'deadline' | 'idle' | null = null;
    const deadline = setTimeout(() => {
      why = 'deadline';
      ctl.abort();
    }, this.limits.deadlineMs);
    let idle: NodeJS.Timeout | undefined;
    const touch = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        why ??= 'idle';
        ctl.abort();
      }, this.limits.idleMs);
    };
    touch();
    const what = method === 'reports/download' ? `${method} ${String(params.id)}` : method;
    try {
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json', HMAC2: signBody(body, this.settings.secret) },
          redirect: 'manual',
          signal: ctl.signal,
        });
      } catch (e) {
        if (why !== null) return failure('timeout', true, `${what}: no answer within ${why === 'idle' ? this.limits.idleMs : this.limits.deadlineMs} ms`);
        return failure('network', true, `${what}: ${causeText(e)}`);
      }
      touch();
      const status = res.status;
      const json = /json/i.test(res.headers.get('content-type') ?? '');
      if (status === 401 || status === 403) {
        await res.body?.cancel().catch(() => undefined);
        return failure('auth', false, `${what}: HTTP ${status}: the API refused the key or the signature`, status);
      }
      if (status < 200 || status > 299) {
        const text = await readCapped(res, 2048, touch).then((b) => (b.ok ? b.value.toString('utf8') : ''), () => '');
        const detail = errorText(parseJson(text));
        const retry = status >= 500 || status === 429 || status === 408;
        return failure('http', retry, `${what}: HTTP ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}${detail !== null ? `: ${detail}` : ''}`, status);
      }
      const declared = Number(res.headers.get('content-length') ?? NaN);
      const cap = toFile !== null && !json ? this.limits.downloadMaxBytes : this.limits.listMaxBytes;
      if (Number.isFinite(declared) && declared > cap) {
        await res.body?.cancel().catch(() => undefined);
        return failure('too-large', false, `${what}: the answer declares ${declared} bytes, more than the cap of ${cap}`, status);
      }
      if (toFile !== null && !json) {
        const file = await streamToFile(res, toFile, cap, touch);
        if (!file.ok) return failure(file.failure.kind, file.failure.retryable, `${what}: ${file.failure.message}`, status);
        return { ok: true, value: { kind: 'file', file: file.value } };
      }
      const got = await readCapped(res, cap, touch);
      if (!got.ok) return failure(got.failure.kind, got.failure.retryable, `${what}: ${got.failure.message}`, status);
      if (Number.isFinite(declared) && got.value.length !== declared) return failure('truncated', true, `${what}: ${got.value.length} of ${declared} bytes received`);
      return { ok: true, value: { kind: 'memory', body: got.value } };
    } catch (e) {
      if (why !== null) return failure('timeout', true, `${what}: cut after ${why === 'idle' ? `${this.limits.idleMs} ms without data` : `the ${this.limits.deadlineMs} ms deadline`}`);
      return failure('truncated', true, `${what}: the answer was cut (${causeText(e)})`);
    } finally {
      clearTimeout(deadline);
      clearTimeout(idle);
    }
  }
}

/** Reads the body into memory; more than `cap` bytes stops reading (too-large). Errors (cut, abort) are thrown. */
async function readCapped(res: Response, cap: number, touch: () => void): Promise<ApiResult<Buffer>> {
  const chunks: Buffer[] = [];
  let n = 0;
  if (res.body === null) return { ok: true, value: Buffer.alloc(0) };
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    touch();
    n += value.byteLength;
    if (n > cap) {
      await reader.cancel().catch(() => undefined);
      return failure('too-large', false, `more than the cap of ${cap} bytes`);
    }
    chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }
  return { ok: true, value: Buffer.concat(chunks, n) };
}

/** Streams the body to `path`, hashing it; more than `cap` bytes stops (too-large). A cut body throws. */
async function streamToFile(res: Response, path: string, cap: number, touch: () => void): Promise<ApiResult<Downloaded>> {
  const out = createWriteStream(path, { mode: 0o640 });
  // A full disk or a vanished folder: reported as a value, not an unhandled 'error' event.
  const write: { error: Error | null } = { error: null };
  out.on('error', (e) => (write.error ??= e));
  const hash = createHash('sha256');
  let n = 0;
  const declared = Number(res.headers.get('content-length') ?? NaN);
  try {
    if (res.body !== null) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        touch();
        n += value.byteLength;
        if (n > cap) {
          await reader.cancel().catch(() => undefined);
          return failure('too-large', false, `more than the cap of ${cap} bytes`);
        }
        hash.update(value);
        if (write.error !== null) break;
        if (!out.write(value)) await Promise.race([once(out, 'drain'), once(out, 'close')]);
      }
    }
    out.end();
    await once(out, 'close').catch(() => undefined);
    if (write.error !== null) return failure('io', false, `cannot write ${path}: ${write.error.message}`);
    if (Number.isFinite(declared) && n !== declared) return failure('truncated', true, `${n} of ${declared} bytes received`);
    return { ok: true, value: { bytes: n, sha256: hash.digest('hex') } };
  } finally {
    if (!out.closed) {
      out.end();
      await once(out, 'close').catch(() => undefined);
    }
  }
}

/** A real calendar day `YYYY-MM-DD` (the date goes into a path and a date column). */
function isDate(s: string): boolean {
  if (!DATE.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function errorText(json: unknown): string | null {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return null;
  const e = (json as Record<string, unknown>).error;
  if (e === undefined) return null;
  return sanitiseText(typeof e === 'string' ? e : JSON.stringify(e), { max: 200 });
}

/** A JSON `{"error": ...}` answer as a failure (auth when the text names the credentials), or null. */
function errorOf(json: unknown): { ok: false; failure: ApiFailure } | null {
  const text = errorText(json);
  if (text === null) return null;
  return AUTH_TEXT.test(text) ? failure('auth', false, `the API refused the request: ${text}`) : failure('api-error', false, `the API answered an error: ${text}`);
}

function entryOf(item: unknown): ReportEntry | null {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) return null;
  const o = item as Record<string, unknown>;
  const str = (k: string): string | null => (typeof o[k] === 'string' ? (o[k] as string) : typeof o[k] === 'number' ? String(o[k]) : null);
  const id = str('id');
  const type = str('type');
  const file = str('file');
  const date = (str('timestamp') ?? '').slice(0, 10);
  if (id === null || !ID.test(id) || type === null || file === null || !isDate(date)) return null;
  return { id, type, file, report: str('report') ?? '', date, url: str('url') };
}

function causeText(e: unknown): string {
  const cause = e instanceof Error && e.cause instanceof Error ? e.cause : e;
  const code = cause instanceof Error && 'code' in cause && typeof cause.code === 'string' ? `${cause.code}: ` : '';
  return `${code}${cause instanceof Error ? cause.message : String(cause)}`;
}
