/**
 * Small pure helpers shared by the Exchange detectors and the probe plan. Not a detector itself
 * (it exports no Detector; the registry test checks that).
 *
 * Everything here reads hostile input: values are length-checked before any pattern is applied,
 * bodies are searched with Buffer.indexOf over the bytes the engine already capped, and nothing
 * allocates in proportion to a hostile value beyond one bounded latin1 slice.
 */
import { excerpt, type Evidence, type ProbeResponse } from '../sdk.js';

/**
 * The kinds of independent evidence that a service is Exchange. Two different kinds are needed
 * before the fingerprint calls a service Exchange (see fingerprint.ts for why these are independent).
 * - `exchange-headers`: response headers only Exchange's front end (CAFE) or OWA set (X-OWA-Version,
 *   X-FEServer, X-CalculatedBETarget, X-BEServer, X-DiagInfo, ...). One kind for all of them: a proxy
 *   or honeypot that fakes one usually fakes them all.
 * - `owa-page`: the body of the OWA logon page (markers, asset paths). One kind for all body evidence:
 *   a phishing clone copies the whole body at once.
 * - `exporttool-manifest`: the eDiscovery export tool ClickOnce manifest served at the ECP path.
 * - `owa-fba-redirect`: the server's routing, not its page: GET /owa/ answered with OWA's forms-based
 *   authentication redirect to /owa/auth/logon.aspx?url=...&reason=0. Clones serve a page; they rarely
 *   reproduce IIS/OWA routing. Needed for Exchange 2010 servers whose X-OWA-Version is stripped (2010
 *   has no CAFE headers and no export tool).
 */
export type ExchangeSignalKind = 'exchange-headers' | 'owa-page' | 'exporttool-manifest' | 'owa-fba-redirect';
export const EXCHANGE_SIGNAL_KINDS: readonly ExchangeSignalKind[] = ['exchange-headers', 'owa-page', 'exporttool-manifest', 'owa-fba-redirect'];

/** Longest build string we accept: "15.2.2562.17" is 12; leave room, refuse anything absurd. */
const MAX_BUILD_LEN = 24;

/**
 * A build string is digits and dots only, 3 or 4 parts, each part at most 5 digits without
 * pointless leading zeros beyond what Exchange writes ("15.01.2176.009" is normalised by the caller
 * that knows that format; here "01" is refused so hostile padding cannot create two spellings).
 */
export function isBuild(s: string, parts: 3 | 4): boolean {
  if (s.length === 0 || s.length > MAX_BUILD_LEN) return false;
  const p = s.split('.');
  if (p.length !== parts) return false;
  for (const x of p) {
    if (x.length === 0 || x.length > 5) return false;
    for (let i = 0; i < x.length; i++) {
      const c = x.charCodeAt(i);
      if (c < 48 || c > 57) return false;
    }
    if (x.length > 1 && x.charCodeAt(0) === 48) return false;
  }
  return true;
}

/** Numeric parts of a build already checked with isBuild. */
export function buildParts(s: string): number[] {
  return s.split('.').map((x) => Number(x));
}

/**
 * True for builds only Exchange Online runs: major 15 with minor 20 or above (15.20.x). On-premises
 * Exchange uses 15.0 (2013), 15.1 (2016) and 15.2 (2019/SE) only.
 */
export function isOnlineBuild(build: string): boolean {
  const [major, minor] = buildParts(build);
  return major === 15 && minor !== undefined && minor >= 20;
}

/** All values of a header (names are lower-case in ProbeResponse). */
export function headerValues(r: ProbeResponse, name: string): string[] {
  const out: string[] = [];
  for (const [k, v] of r.headers) if (k === name) out.push(v);
  return out;
}

/** Trim optional whitespace the way HTTP allows around a field value. */
export function trimOws(v: string): string {
  return v.replace(/^[ \t]+|[ \t]+$/g, '');
}

/**
 * The valid X-OWA-Version build of a response, if any: exactly one well-formed 4-part value.
 * Two different values in one response are hostile or broken: neither is trusted.
 */
export function owaVersionHeader(r: ProbeResponse): string | null {
  let found: string | null = null;
  for (const raw of headerValues(r, 'x-owa-version')) {
    if (raw.length > MAX_BUILD_LEN + 8) return null;
    const v = trimOws(raw);
    if (!isBuild(v, 4)) return null;
    if (found !== null && found !== v) return null;
    found = v;
  }
  return found;
}

/** Headers that Exchange's HTTP proxy (CAFE) or OWA add and that ordinary web servers never send. */
export const EXCHANGE_SERVER_HEADERS: readonly string[] = [
  'x-feserver',
  'x-calculatedbetarget',
  'x-beserver',
  'x-diaginfo',
  'x-cafeserver',
  'x-targetbeserver',
];

/**
 * A server name as Exchange writes it in X-FEServer & co: a NetBIOS name or an FQDN.
 * Letters, digits, dots, hyphens and underscores, at most 253 characters. Anything else is not counted.
 */
export function isServerName(v: string): boolean {
  if (v.length === 0 || v.length > 253) return false;
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(v);
}

/** True if a server name is an Exchange Online (Microsoft 365) host name. */
export function isOnlineHostName(v: string): boolean {
  const s = v.toLowerCase();
  return s.endsWith('.outlook.com') || s.endsWith('.outlook.cn') || s.endsWith('.office365.us');
}

/**
 * Path part of a URL the engine reports (no query or fragment), lower-cased; "" if there is none.
 * Hand-rolled because WHATWG URL parsing costs microseconds per call on a path that runs per host, and
 * the engine's URLs are its own ("scheme://authority/path?query"), not arbitrary input.
 */
export function urlPath(url: string): string {
  const scheme = url.indexOf('://');
  if (scheme < 0) return '';
  const slash = url.indexOf('/', scheme + 3);
  if (slash < 0) return '';
  let end = url.length;
  const q = url.indexOf('?', slash);
  if (q >= 0) end = q;
  const h = url.indexOf('#', slash);
  if (h >= 0 && h < end) end = h;
  return url.slice(slash, end).toLowerCase();
}

/**
 * Evidence for a header value. The excerpt holds the value only (capped and cleaned by sdk.excerpt); the
 * header name is in `name`, so output that prints both does not repeat it.
 */
export function headerEvidence(detector: string, r: ProbeResponse, name: string, value: string): Evidence {
  return { detector, probe: r.probeId, url: excerpt(r.url, 200), where: 'header', name, excerpt: excerpt(value) };
}

/** Evidence for a body excerpt found at a byte offset. */
export function bodyEvidence(detector: string, r: ProbeResponse, at: number, len: number, locator: string): Evidence {
  const start = Math.max(0, at);
  const end = Math.min(r.body.length, start + Math.min(len, 200));
  return {
    detector,
    probe: r.probeId,
    url: excerpt(r.url, 200),
    where: 'body',
    name: locator,
    excerpt: excerpt(r.body.toString('latin1', start, end)),
  };
}

/** Evidence for a status/URL observation (e.g. a redirect to OWA's error page). */
export function statusEvidence(detector: string, r: ProbeResponse, text: string): Evidence {
  return { detector, probe: r.probeId, url: excerpt(r.url, 200), where: 'status', excerpt: excerpt(text) };
}

/** Bytes of an ASCII needle, prepared once per module. */
export function needle(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

const DIGIT_0 = 48;
const DIGIT_9 = 57;
const DOT = 46;

/**
 * Reads a run of digits and dots starting at `at` in `body` (at most `max` bytes).
 * Returns the text (possibly empty). Used to read builds after a fixed prefix without regexes.
 */
export function readDigitsDots(body: Buffer, at: number, max = MAX_BUILD_LEN + 1): string {
  let end = at;
  const limit = Math.min(body.length, at + max);
  while (end < limit) {
    const c = body[end] as number;
    if ((c >= DIGIT_0 && c <= DIGIT_9) || c === DOT) end++;
    else break;
  }
  return body.toString('latin1', at, end);
}

const OWA = needle('/owa/');
const AUTH = needle('auth/');
/** An OWA logon page references a handful of assets; a page with more "/owa/" hits is not worth more work. */
const MAX_HITS = 256;
const MAX_BUILDS = 3;
const SLASH = 0x2f;

export interface AssetHit {
  readonly build: string;
  readonly precision: 'exact' | 'cu';
  readonly at: number;
  readonly len: number;
}

/** The asset-path build at one "/owa/" occurrence, if it is one. */
function readAt(body: Buffer, at: number): AssetHit | null {
  let p = at + OWA.length;
  const isAuth = body.length >= p + AUTH.length && body.compare(AUTH, 0, AUTH.length, p, p + AUTH.length) === 0;
  if (isAuth) p += AUTH.length;
  const text = readDigitsDots(body, p);
  if (text.length === 0 || body[p + text.length] !== SLASH) return null;
  const len = p + text.length + 1 - at;
  if (isAuth) {
    // 2013 and later: major 15, three parts.
    if (!isBuild(text, 3) || buildParts(text)[0] !== 15) return null;
    return { build: text, precision: 'cu', at, len };
  }
  // 2010 (14.x) and 2007 (8.x): four parts, the full build.
  if (!isBuild(text, 4)) return null;
  const major = buildParts(text)[0];
  if (major !== 14 && major !== 8) return null;
  return { build: text, precision: 'exact', at, len };
}

/** After the first asset path, look this far for others (OWA lists its assets together in <head>). */
const CONFLICT_WINDOW = 4096;
const ASSET_WINDOW = 128 * 1024;
const assetCache = new WeakMap<Buffer, readonly AssetHit[]>();

/**
 * Distinct OWA asset-path builds in a body (see owa-asset-path.ts), in order of first appearance:
 * the first one in the body's first 128 KB, then others within CONFLICT_WINDOW bytes of it.
 * Shared with the probe plan so that both agree; cached per body buffer because the plan and the
 * detector read the same response.
 */
export function findAssetBuilds(body: Buffer): readonly AssetHit[] {
  const cached = assetCache.get(body);
  if (cached !== undefined) return cached;
  const out: AssetHit[] = [];
  // OWA puts its asset links in <head>; like the markers, nothing past the first 128 KB is read.
  const window = body.length > ASSET_WINDOW ? body.subarray(0, ASSET_WINDOW) : body;
  let limit = window.length;
  let at = window.indexOf(OWA);
  for (let n = 0; at >= 0 && at < limit && n < MAX_HITS && out.length < MAX_BUILDS; n++) {
    const hit = readAt(window, at);
    if (hit !== null && !out.some((h) => h.build === hit.build)) {
      if (out.length === 0) limit = Math.min(limit, at + CONFLICT_WINDOW);
      out.push(hit);
    }
    at = window.indexOf(OWA, at + OWA.length);
  }
  assetCache.set(body, out);
  return out;
}

/** Matched without the "<" so that a prefixed element (<asmv1:assemblyIdentity) is read too. */
const IDENTITY_TAG = needle('assemblyIdentity');
/** The manifest is small (about 16 KB); the deployment identity comes first. Look no further. */
const SEARCH_LIMIT = 64 * 1024;
const MAX_TAG = 1024;
const EXPORTTOOL_PATH_RE = /^\/ecp\/[a-z0-9.]{1,32}\/exporttool\/microsoft\.exchange\.ediscovery\.exporttool\.application$/;
const ATTR_RE = /\b(name|version)\s*=\s*["']([^"'<>]{0,200})["']/g;

/** Attributes `name` and `version` of the first <assemblyIdentity ...> tag, or null. */
function firstIdentity(body: Buffer): { name: string; version: string; at: number; len: number } | null {
  const window = body.length > SEARCH_LIMIT ? body.subarray(0, SEARCH_LIMIT) : body;
  // Only an element name counts: "<assemblyIdentity" or "<prefix:assemblyIdentity".
  const isElement = (i: number): boolean => window[i - 1] === 0x3c /* < */ || window[i - 1] === 0x3a; /* : */
  let at = window.indexOf(IDENTITY_TAG);
  for (let n = 0; at >= 0 && !isElement(at) && n < 16; n++) at = window.indexOf(IDENTITY_TAG, at + IDENTITY_TAG.length);
  if (at < 0 || !isElement(at)) return null;
  const end = window.indexOf(0x3e /* > */, at);
  if (end < 0 || end - at > MAX_TAG) return null;
  const tag = window.toString('latin1', at, end + 1);
  let name: string | null = null;
  let version: string | null = null;
  for (const m of tag.matchAll(ATTR_RE)) {
    const key = m[1];
    const value = m[2] ?? '';
    if (key === 'name' && name === null) name = value;
    else if (key === 'version' && version === null) version = value;
  }
  if (name === null || version === null) return null;
  return { name, version, at, len: end + 1 - at };
}

/**
 * The exact build of an export tool manifest response (see exporttool-manifest.ts for the rules), with
 * the byte range of its <assemblyIdentity> tag; null if the response is not a genuine-looking manifest
 * at the ECP path. Shared with the probe plan so that both agree.
 */
export function parseExporttoolManifest(r: ProbeResponse): { build: string; at: number; len: number } | null {
  if (r.status !== 200) return null;
  if (!EXPORTTOOL_PATH_RE.test(urlPath(r.url))) return null;
  const id = firstIdentity(r.body);
  if (id === null) return null;
  // The deployment identity is "microsoft.exchange.ediscovery.exporttool.application"; accept the
  // bare assembly name too (same product), nothing else.
  if (!id.name.toLowerCase().startsWith('microsoft.exchange.ediscovery.exporttool')) return null;
  if (!isBuild(id.version, 4) || !id.version.startsWith('15.')) return null;
  return { build: id.version, at: id.at, len: id.len };
}

/**
 * True if a URL is OWA's forms-based-authentication redirect target: path /owa/auth/logon.aspx with
 * both the `url=` and `reason=` query parameters (e.g. "/owa/auth/logon.aspx?url=https%3a%2f%2fh%2fowa%2f&reason=0").
 * Accepts absolute URLs and absolute paths (a Location header may carry either).
 */
export function isFbaLogonUrl(url: string): boolean {
  if (url.length > 4096) return false;
  const lower = url.toLowerCase();
  const pathStart = lower.startsWith('/') ? 0 : lower.indexOf('/', lower.indexOf('://') + 3);
  if (pathStart < 0 || (!lower.startsWith('/') && lower.indexOf('://') < 0)) return false;
  const q = lower.indexOf('?', pathStart);
  if (q < 0) return false;
  if (lower.slice(pathStart, q) !== '/owa/auth/logon.aspx') return false;
  const params = lower.slice(q + 1).split('&');
  return params.some((p) => p.startsWith('url=') && p.length > 4) && params.some((p) => /^reason=\d{1,3}$/.test(p));
}

/**
 * How a GET /owa/ response shows OWA's FBA redirect, if it does: the unfollowed 3xx's Location, or the
 * followed chain (at least one redirect followed, final URL the FBA logon URL; the engine lists the
 * followed Location targets in `redirects`). Shared by the detector and the plan.
 */
export function fbaRedirectOf(r: ProbeResponse): { via: 'location'; location: string } | { via: 'chain'; url: string } | null {
  if (r.status >= 300 && r.status < 400) {
    const location = headerValues(r, 'location')[0];
    if (location === undefined) return null;
    const value = trimOws(location);
    return isFbaLogonUrl(value) ? { via: 'location', location: value } : null;
  }
  if (r.redirects.length === 0 || !isFbaLogonUrl(r.url)) return null;
  return { via: 'chain', url: r.url };
}

/**
 * OWA logon page markers, ordered by where OWA puts them: <head> markers first, so that a real page
 * is settled after reading its first kilobyte (a missing marker costs a scan of the whole window; a
 * found one stops early).
 */
const PAGE_MARKERS: ReadonlyArray<{ readonly label: string; readonly bytes: Buffer }> = [
  { label: 'owapage-comment', bytes: needle('OwaPage = ASP.auth_logon_aspx') },
  { label: 'title-outlook', bytes: needle('<title>Outlook</title>') },
  { label: 'title-owa', bytes: needle('Outlook Web App') },
  { label: 'title-owa-2007', bytes: needle('Outlook Web Access') },
  { label: 'logon-form', bytes: needle('name="logonForm"') },
  { label: 'form-action-2013', bytes: needle('action="/owa/auth.owa"') },
  { label: 'form-action-2010', bytes: needle('/owa/auth/owaauth.dll') },
  { label: 'forcedownlevel', bytes: needle('name="forcedownlevel"') },
  { label: 'clklgn-script', bytes: needle('clkLgn()') },
];
/** OWA logon pages are about 60 KB with the form near the end; markers further in are not looked for. */
const MARKER_WINDOW = 128 * 1024;
/** Nobody needs more than two: the detector's threshold. */
const MARKERS_WANTED = 2;
const markerCache = new WeakMap<Buffer, ReadonlyArray<{ label: string; at: number; len: number }>>();

/**
 * The first two distinct OWA page markers found in a body's first 128 KB (fewer if absent). Shared by
 * the page-marker detector and the probe plan, cached per body buffer.
 */
export function findPageMarkers(body: Buffer): ReadonlyArray<{ label: string; at: number; len: number }> {
  const cached = markerCache.get(body);
  if (cached !== undefined) return cached;
  const window = body.length > MARKER_WINDOW ? body.subarray(0, MARKER_WINDOW) : body;
  const out: Array<{ label: string; at: number; len: number }> = [];
  for (const m of PAGE_MARKERS) {
    if (out.length >= MARKERS_WANTED) break;
    const at = window.indexOf(m.bytes);
    if (at >= 0) out.push({ label: m.label, at, len: m.bytes.length });
  }
  markerCache.set(body, out);
  return out;
}

/**
 * Which IIS versions each Exchange version can be served by, through the Windows Server releases it installs
 * on (IIS 6.0 = Windows Server 2003, 7.0 = 2008, 7.5 = 2008 R2, 8.0 = 2012, 8.5 = 2012 R2, 10.0 = 2016, 2019,
 * 2022 and 2025, which all report "Microsoft-IIS/10.0"). A Server header outside the set is a contradiction
 * (a honeypot tell, or a reverse proxy that rewrites Server): see platform-consistency.ts.
 *
 * Provenance: Microsoft Learn "Exchange Server supportability matrix" (Windows Server sections) for 2013,
 * 2016, 2019 and SE; the Exchange 2010 and 2007 "System requirements" pages (learn.microsoft.com,
 * previous-versions) for 2010 and 2007; the IIS version per Windows Server release from Microsoft's IIS
 * documentation. Written down from those documents (not machine-transcribed). Rows whose `uncertain`
 * versions depend on a service pack or CU we do not model are counted as plausible: a contradiction must
 * be certain before it costs a server its exact build.
 */
export interface IisPlatformRow {
  readonly edition: string;
  /** Build prefix test: Exchange major, minor (null = any), and for 15.2 whether it is SE (build >= 2562). */
  readonly major: number;
  readonly minor: number | null;
  readonly se?: boolean;
  /** IIS versions (major*10+minor) the edition runs on. */
  readonly iis: readonly number[];
  /** Versions allowed only from some SP/CU on, or not verified: still counted as plausible. */
  readonly uncertain: readonly number[];
  readonly why: string;
}

export const IIS_PLATFORM_TABLE: readonly IisPlatformRow[] = [
  {
    edition: 'Exchange Server 2007',
    major: 8,
    minor: null,
    iis: [60, 70, 75],
    uncertain: [75],
    why: 'Windows Server 2003 (IIS 6.0) and 2008 (IIS 7.0); 2008 R2 (IIS 7.5) only with SP3',
  },
  {
    edition: 'Exchange Server 2010',
    major: 14,
    minor: null,
    iis: [70, 75, 80, 85],
    uncertain: [80, 85],
    why: 'Windows Server 2008 (IIS 7.0) and 2008 R2 (IIS 7.5); 2012 (IIS 8.0) and 2012 R2 (IIS 8.5) only with SP3 (2012 R2 from SP3 RU5); never 2016 or later',
  },
  {
    edition: 'Exchange Server 2013',
    major: 15,
    minor: 0,
    iis: [75, 80, 85],
    uncertain: [],
    why: 'Windows Server 2008 R2 SP1 (IIS 7.5), 2012 (IIS 8.0) and 2012 R2 (IIS 8.5); never 2016 or later',
  },
  {
    edition: 'Exchange Server 2016',
    major: 15,
    minor: 1,
    iis: [80, 85, 100],
    uncertain: [],
    why: 'Windows Server 2012 (IIS 8.0), 2012 R2 (IIS 8.5) and 2016 (IIS 10.0, from CU3); never 2008 R2',
  },
  {
    edition: 'Exchange Server 2019',
    major: 15,
    minor: 2,
    se: false,
    iis: [100],
    uncertain: [],
    why: 'Windows Server 2019, 2022 (from CU12) and 2025 (from CU15): IIS 10.0 only',
  },
  {
    edition: 'Exchange Server SE',
    major: 15,
    minor: 2,
    se: true,
    iis: [100],
    uncertain: [],
    why: 'Windows Server 2019, 2022 and 2025: IIS 10.0 only',
  },
];

/** The platform row of a build checked with isBuild (3 or 4 parts), or null (unknown major, Exchange Online). */
export function iisPlatformOf(build: string): IisPlatformRow | null {
  const [major, minor, b] = buildParts(build);
  if (isOnlineBuild(build)) return null;
  for (const row of IIS_PLATFORM_TABLE) {
    if (row.major !== major) continue;
    if (row.minor !== null && row.minor !== minor) continue;
    if (row.se !== undefined && row.se !== ((b ?? 0) >= 2562)) continue;
    return row;
  }
  return null;
}

/** "Microsoft-IIS/7.5" → 75; anything else (other servers, hostile values) → null. */
export function iisVersionOf(server: string): number | null {
  const m = /^Microsoft-IIS\/(\d{1,2})\.(\d)$/.exec(server);
  if (m === null) return null;
  return Number(m[1]) * 10 + Number(m[2]);
}

export function formatIis(v: number): string {
  return `${Math.floor(v / 10)}.${v % 10}`;
}

/** The IIS version of a response's (first) Server header, or null when it is not IIS. */
export function iisOfResponse(r: ProbeResponse): number | null {
  const raw = headerValues(r, 'server')[0];
  if (raw === undefined || raw.length > 64) return null;
  return iisVersionOf(trimOws(raw));
}

/** A claimed build that cannot run on the IIS version seen, with the platform row that says so. */
export interface PlatformContradiction {
  readonly build: string;
  readonly iis: number;
  readonly row: IisPlatformRow;
}

/** The first of `builds` (3- or 4-part, checked) whose edition cannot run on IIS `iis`, or null. */
export function platformContradiction(iis: number, builds: readonly string[]): PlatformContradiction | null {
  for (const build of builds) {
    const row = iisPlatformOf(build);
    if (row !== null && !row.iis.includes(iis)) return { build, iis, row };
  }
  return null;
}

/** True for a 404 answered at the export tool path itself (not after a redirect elsewhere). */
export function isExporttoolNotFound(r: ProbeResponse): boolean {
  return r.status === 404 && EXPORTTOOL_PATH_RE.test(urlPath(r.url));
}
