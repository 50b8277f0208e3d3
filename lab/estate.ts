/**
 * The simulated estate: which host runs what, generated deterministically from a seed. Pure: no I/O.
 *
 * The mix is modelled on the exposure picture of March 2021 (ProxyLogon): mostly Exchange 2016, then 2013,
 * 2019 and 2010 SP3; most servers on a cumulative update without its security update, a share already on
 * the March 2021 security updates (Mar21SU, or RU32 on 2010), a few on later builds (up to 2019 CU15 and
 * Subscription Edition); plus decoys (IIS, nginx, OWA phishing clones, Exchange Online front ends) and
 * hostile hosts. Every host carries its ground truth: what it runs, what it exposes, and what a correct
 * non-intrusive scanner can know about it (`expected`).
 */
import { intToIpv4, ipv4ToInt } from './net-guard.js';

export const LAB_KINDS = [
  'exchange',
  'iis',
  'nginx',
  'owa-phish',
  'exchange-online',
  'tarpit',
  'slow-drip',
  'garbage',
  'oversized',
  'hostile-headers',
  'closed',
] as const;
export type LabKind = (typeof LAB_KINDS)[number];

/** Weights per kind (they need not sum to 1). */
export type LabMix = Readonly<Partial<Record<LabKind, number>>>;

/** Default mix: a national estate where most HTTPS hosts in the target list are Exchange. */
export const DEFAULT_MIX: Readonly<Record<LabKind, number>> = {
  exchange: 0.72,
  iis: 0.05,
  nginx: 0.04,
  'owa-phish': 0.03,
  'exchange-online': 0.03,
  tarpit: 0.01,
  'slow-drip': 0.01,
  garbage: 0.02,
  oversized: 0.01,
  'hostile-headers': 0.02,
  closed: 0.06,
};

/**
 * Every host an on-premises Exchange server (no decoys, closed ports or hostile hosts): the shape of a
 * load balancer or a CERT's list of known Exchange servers, and the benchmark's per-host cost estate
 * (every host costs the full fingerprint, so the scanner's work per host is what is measured).
 */
export const ALL_EXCHANGE_MIX: Readonly<Record<LabKind, number>> = {
  exchange: 1,
  iis: 0,
  nginx: 0,
  'owa-phish': 0,
  'exchange-online': 0,
  tarpit: 0,
  'slow-drip': 0,
  garbage: 0,
  oversized: 0,
  'hostile-headers': 0,
  closed: 0,
};

/** Named mixes for the CLI (`tocsin lab --mix NAME`) and the benchmark (`--estate NAME`). */
export const LAB_MIXES: Readonly<Record<string, Readonly<Record<LabKind, number>>>> = {
  default: DEFAULT_MIX,
  'all-exchange': ALL_EXCHANGE_MIX,
};

/** Sub-behaviours per kind; hosts of a kind cycle through them so every variant appears. */
export const VARIANTS: Readonly<Record<LabKind, readonly string[]>> = {
  exchange: ['root-iis-start', 'root-redirect-owa'],
  iis: ['iis-10', 'iis-8.5', 'iis-7.5'],
  nginx: ['nginx-default', 'nginx-404'],
  'owa-phish': ['apache-php-kit', 'iis75-honeypot', 'nginx-kit'],
  'exchange-online': ['outlook-fe'],
  tarpit: ['silent'],
  'slow-drip': ['drip-headers'],
  garbage: ['random-bytes', 'ssh-banner', 'tls-then-random'],
  oversized: ['body-50mb', 'huge-header-line', 'many-headers'],
  'hostile-headers': ['script', 'csv-formula', 'long-value', 'non-utf8', 'crlf-ish'],
  closed: ['reset'],
};

/** A build row as the knowledge base gives it (structurally ExchangeBuildRow). */
export interface LabBuildRow {
  readonly edition: string;
  readonly cu: string;
  readonly su: string | null;
  readonly releaseDate: string;
  readonly build: string;
  readonly uncertain: boolean;
}

export interface LabExposure {
  /** Responses carry `X-OWA-Version` with the (wire) build. */
  readonly xOwaVersion: boolean;
  /** The exporttool ClickOnce manifest is reachable under /ecp/ (2013 and later, ECP not blocked). */
  readonly exporttool: boolean;
  /** OWA asset paths in the logon page: 'cu' (/owa/auth/15.1.2176/...), 'full' (/owa/14.3.513.0/... on 2010). */
  readonly assetPath: 'cu' | 'full' | null;
}

export interface LabExpected {
  readonly product: 'ms-exchange' | 'ms-exchange-online' | null;
  /**
   * What a correct non-intrusive scanner can know: the listed build (4 parts) when an exact source is
   * visible (a drifted wire revision maps to the nearest listed build of its CU), the 3-part CU build
   * ("15.1.2176") when only the asset path is visible, null when not Exchange on-premises.
   */
  readonly build: string | null;
  readonly buildPrecision: 'exact' | 'cu' | null;
  /** The knowledge base's CU name ("CU19", "SP3 RU32"), null when not Exchange on-premises. */
  readonly cu: string | null;
}

/**
 * How a connection to one port of a host ends, for a scanner with sane caps (e.g. 32 KiB of headers):
 *  - 'http': a well-formed HTTP response (bodies may be cut at the scanner's cap);
 *  - 'http-malformed': an HTTP response a strict parser rejects (a bare CR inside a header value);
 *  - 'http-oversized': an HTTP response whose header block exceeds any sane cap (1 MiB line, 20,000 lines);
 *  - 'timeout': nothing usable ever arrives (tarpit; slow drip after the first bytes);
 *  - 'tls-error': the TLS handshake cannot complete (non-TLS bytes on the TLS port);
 *  - 'not-http': bytes arrive but they are not HTTP;
 *  - 'reset': the connection is reset at once (closed port).
 */
export type LabOutcome = 'http' | 'http-malformed' | 'http-oversized' | 'timeout' | 'tls-error' | 'not-http' | 'reset';

export interface LabHost {
  readonly ip: string;
  /** Position in the estate (ip = base + index). */
  readonly index: number;
  readonly kind: LabKind;
  /** Sub-behaviour, one of VARIANTS[kind]. */
  readonly variant: string;
  /** Knowledge-base edition ("Exchange Server 2016"), "Exchange Online" or null. */
  readonly edition: string | null;
  /** The exact build the server runs (Exchange Online: its 15.20 build), null otherwise. */
  readonly build: string | null;
  /** The build its web components report on the wire (differs from `build` where the revision drifts). */
  readonly wireBuild: string | null;
  readonly cu: string | null;
  readonly su: string | null;
  /** NetBIOS-style server name sent in X-FEServer, null for non-Exchange. */
  readonly serverName: string | null;
  /** Public name on the certificate (CN), e.g. "mail.alpha.example". */
  readonly hostname: string;
  /** Id of the certificate (file stem under lab/certs). */
  readonly cert: string;
  /** Which lab ports accept connections for this host. */
  readonly ports: { readonly https: boolean; readonly http: boolean };
  /** Expected outcome per port (see LabOutcome). */
  readonly outcome: { readonly https: LabOutcome; readonly http: LabOutcome };
  readonly exposes: LabExposure;
  readonly expected: LabExpected;
}

export interface EstateOptions {
  readonly hosts: number;
  /** First address (dotted quad in 127.0.0.0/8). */
  readonly base: string;
  readonly seed: number;
  readonly mix?: LabMix;
}

export const MAX_HOSTS = 65_536;

/** Builds whose web components report a revision other than the listed one (observed in the field). */
export const WIRE_DRIFT: Readonly<Record<string, string>> = {
  // Exchange 2019 CU9: listed as 15.2.858.5, OWA/ECP report 15.2.858.2.
  '15.2.858.5': '15.2.858.2',
};

/** Deterministic PRNG (mulberry32): small, fast, good enough for picking. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rng = () => number;

function pickWeighted<T>(rng: Rng, items: readonly (readonly [T, number])[]): T {
  let total = 0;
  for (const [, w] of items) total += w;
  let r = rng() * total;
  for (const [item, w] of items) {
    r -= w;
    if (r < 0) return item;
  }
  const last = items[items.length - 1];
  if (last === undefined) throw new Error('pickWeighted: no items');
  return last[0];
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  const v = items[Math.floor(rng() * items.length)];
  if (v === undefined) throw new Error('pick: no items');
  return v;
}

/**
 * Exact counts per kind for `n` hosts: largest-remainder rounding of the weights, then every kind with a
 * positive weight gets at least one host when n allows (so small test estates still show every kind).
 */
export function kindCounts(n: number, mix: LabMix): Map<LabKind, number> {
  const weights = LAB_KINDS.map((k) => [k, Math.max(0, mix[k] ?? 0)] as const).filter(([, w]) => w > 0);
  const total = weights.reduce((s, [, w]) => s + w, 0);
  const counts = new Map<LabKind, number>();
  if (total === 0 || n === 0) return counts;
  const rema: { k: LabKind; r: number }[] = [];
  let used = 0;
  for (const [k, w] of weights) {
    const exact = (n * w) / total;
    const c = Math.floor(exact);
    counts.set(k, c);
    used += c;
    rema.push({ k, r: exact - c });
  }
  rema.sort((a, b) => b.r - a.r || LAB_KINDS.indexOf(a.k) - LAB_KINDS.indexOf(b.k));
  for (let i = 0; used < n; i++, used++) {
    const e = rema[i % rema.length];
    if (e !== undefined) counts.set(e.k, (counts.get(e.k) ?? 0) + 1);
  }
  if (n >= weights.length) {
    for (const [k] of weights) {
      if ((counts.get(k) ?? 0) > 0) continue;
      // take one from the largest kind
      let big: LabKind | undefined;
      for (const [k2, c2] of counts) if (big === undefined || c2 > (counts.get(big) ?? 0)) big = k2;
      if (big === undefined) break;
      counts.set(big, (counts.get(big) ?? 0) - 1);
      counts.set(k, 1);
    }
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------------------
// Exchange builds: the March 2021 model

type Family = '2010' | '2013' | '2016' | '2019' | 'SE';

interface CuGroup {
  readonly family: Family;
  readonly cu: string;
  readonly cuNumber: number;
  /** The CU (or rollup) itself, without security update. */
  readonly rtm: LabBuildRow;
  readonly rows: readonly LabBuildRow[];
}

/** The day the March 2021 out-of-band security updates shipped. */
const MAR21 = '2021-03-02';
/** The snapshot date of the modelled estate: builds released after it are "later" builds. */
const SNAPSHOT = '2021-03-10';

function familyOf(build: string): Family | null {
  const p = build.split('.').map(Number);
  const [maj, min, b] = [p[0], p[1], p[2] ?? 0];
  if (maj === 14 && min === 3) return '2010';
  if (maj === 15 && min === 0) return '2013';
  if (maj === 15 && min === 1) return '2016';
  if (maj === 15 && min === 2) return b >= 2562 ? 'SE' : '2019';
  return null;
}

function revisionOf(build: string): number {
  return Number(build.split('.')[3] ?? 0);
}

function cuKey(build: string): string {
  return build.split('.').slice(0, 3).join('.');
}

/** "YYYY-MM" dates compare as mid-month. */
function dateKey(d: string): string {
  return d.length === 7 ? `${d}-15` : d;
}

function cuNumberOf(g: { family: Family; cu: string }): number {
  const m = /(?:CU|RU)\s*(\d+)/.exec(g.cu);
  return m?.[1] !== undefined ? Number(m[1]) : 0;
}

/** Groups the KB's rows by CU (3-part build), ignoring rows marked uncertain (never a lab host's truth). */
export function groupBuilds(rows: readonly LabBuildRow[]): CuGroup[] {
  const byKey = new Map<string, LabBuildRow[]>();
  for (const r of rows) {
    if (r.uncertain) continue;
    const f = familyOf(r.build);
    if (f === null) continue;
    if (f === '2010' && !r.cu.startsWith('SP3')) continue;
    const k = cuKey(r.build);
    const list = byKey.get(k) ?? [];
    list.push(r);
    byKey.set(k, list);
  }
  const groups: CuGroup[] = [];
  for (const list of byKey.values()) {
    list.sort((a, b) => revisionOf(a.build) - revisionOf(b.build));
    const first = list[0];
    if (first === undefined) continue;
    const rtm = list.find((r) => r.su === null) ?? first;
    const family = familyOf(first.build) as Family;
    groups.push({ family, cu: rtm.cu, cuNumber: cuNumberOf({ family, cu: rtm.cu }), rtm, rows: list });
  }
  groups.sort((a, b) => (a.rtm.build < b.rtm.build ? -1 : 1));
  return groups;
}

/** Build pools of the March 2021 model, computed once per KB. */
interface BuildModel {
  readonly onPrem: ReadonlyMap<Family, readonly CuGroup[]>;
  readonly later: readonly LabBuildRow[];
  readonly byBuild: ReadonlyMap<string, LabBuildRow>;
}

const CU_RANGE: Readonly<Record<Exclude<Family, 'SE'>, readonly [number, number]>> = {
  '2010': [0, 32],
  '2013': [21, 23],
  '2016': [8, 19],
  '2019': [1, 8],
};

export function buildModel(rows: readonly LabBuildRow[]): BuildModel {
  const groups = groupBuilds(rows);
  const onPrem = new Map<Family, CuGroup[]>();
  const later: LabBuildRow[] = [];
  const byBuild = new Map<string, LabBuildRow>();
  for (const g of groups) {
    for (const r of g.rows) byBuild.set(r.build, r);
    if (g.family !== 'SE') {
      const [lo, hi] = CU_RANGE[g.family];
      if (g.cuNumber >= lo && g.cuNumber <= hi && dateKey(g.rtm.releaseDate) <= SNAPSHOT) {
        const list = onPrem.get(g.family) ?? [];
        list.push(g);
        onPrem.set(g.family, list);
        continue;
      }
    }
    // later: 2016 CU20+, 2019 CU9-CU15, SE; the CU itself and its newest update
    const isLater =
      (g.family === '2016' && g.cuNumber >= 20) ||
      (g.family === '2019' && g.cuNumber >= 9 && g.cuNumber <= 15) ||
      g.family === 'SE';
    if (isLater) {
      later.push(g.rtm);
      const newest = g.rows[g.rows.length - 1];
      if (newest !== undefined && newest !== g.rtm) later.push(newest);
    }
  }
  return { onPrem, later, byBuild };
}

/** Edition weights among on-premises Exchange hosts (share of the March 2021 exposure, rounded). */
const EDITION_WEIGHTS: readonly (readonly [Family | 'later', number])[] = [
  ['2010', 0.13],
  ['2013', 0.2],
  ['2016', 0.42],
  ['2019', 0.18],
  ['later', 0.07],
];

function pickExchangeBuild(rng: Rng, model: BuildModel): LabBuildRow {
  const fam = pickWeighted(rng, EDITION_WEIGHTS);
  if (fam === 'later' || fam === 'SE') return pick(rng, model.later);
  const groups = model.onPrem.get(fam) ?? [];
  if (groups.length === 0) return pick(rng, model.later);
  // Newer CUs are more common: weight grows with the CU's position.
  const g = pickWeighted(
    rng,
    groups.map((x, i) => [x, 1 + (3 * i) / groups.length] as const),
  );
  if (fam === '2010') {
    // 2010: each rollup is its own "CU" group; RU32 (Mar 2021) was applied by about a third.
    const ru32 = groups.find((x) => dateKey(x.rtm.releaseDate) >= MAR21);
    if (ru32 !== undefined && rng() < 0.35) return ru32.rtm;
    return g.rtm;
  }
  const r = rng();
  const mar21 = g.rows.find((x) => x.su !== null && dateKey(x.releaseDate) >= MAR21 && dateKey(x.releaseDate) <= SNAPSHOT);
  if (r < 0.32 && mar21 !== undefined) return mar21;
  const older = g.rows.filter((x) => x.su !== null && dateKey(x.releaseDate) < MAR21);
  if (r < 0.52 && older.length > 0) return pick(rng, older);
  return g.rtm;
}

/**
 * Builds every estate shows when it has room (the first Exchange hosts in address order get one each):
 * the boundary cases the scanner must get right.
 */
const SHOWCASE_BUILDS: readonly string[] = [
  '14.3.513.0', // 2010 SP3 RU32 (March 2021)
  '15.0.1497.2', // 2013 CU23, no SU
  '15.0.1497.12', // 2013 CU23 Mar21SU
  '15.1.2176.2', // 2016 CU19
  '15.1.2176.9', // 2016 CU19 Mar21SU
  '15.2.792.3', // 2019 CU8
  '15.2.858.5', // 2019 CU9 (wire drift: 15.2.858.2)
  '15.2.1544.4', // 2019 CU14
  '15.2.2562.17', // SE RTM
];

// ---------------------------------------------------------------------------------------------------------
// Names and certificates

const ORG_CERTS: readonly (readonly [string, string, number])[] = [
  // cert id, hostname, weight
  ['mail-alpha', 'mail.alpha.example', 3],
  ['mail-bravo', 'mail.bravo.example', 3],
  ['mail-charlie', 'mail.charlie.example', 2],
  ['mail-delta', 'mail.delta.example', 2],
  // RSA-2048 (realistic, but each handshake costs the lab several times an ECDSA one): kept to ~15%.
  ['mail-echo', 'mail.echo.example', 1.2],
  ['exch-selfsigned', 'EXCH01', 0.8],
];
const SERVER_PREFIXES = ['EXCH', 'EX', 'MAIL', 'MBX', 'CAS', 'EXSRV'] as const;

function serverNameFor(rng: Rng, hostIndexInKind: number): string {
  const p = pick(rng, SERVER_PREFIXES);
  return `${p}${String((hostIndexInKind % 19) + 1).padStart(2, '0')}`;
}

/** Exchange Online front-end build of March 2021 (15.20.39xx), deterministic per host. */
function onlineBuild(rng: Rng): string {
  return `15.20.${3890 + Math.floor(rng() * 70)}.${10 + Math.floor(rng() * 30)}`;
}

function cuBuildOf(build: string): string {
  return build.split('.').slice(0, 3).join('.');
}

const NO_EXPOSURE: LabExposure = { xOwaVersion: false, exporttool: false, assetPath: null };
const NOT_EXCHANGE: LabExpected = { product: null, build: null, buildPrecision: null, cu: null };

/** Exposure profiles of 2013+ servers: [xOwaVersion, exporttool, weight]. */
const EXPOSURE_PROFILES: readonly (readonly [readonly [boolean, boolean], number])[] = [
  [[true, true], 0.55], // header + manifest
  [[true, false], 0.1], // header, ECP blocked at the edge
  [[false, true], 0.2], // header stripped by a rewrite rule; manifest still reachable
  [[false, false], 0.15], // header stripped and ECP blocked: only the CU from the asset path
];

function exchangeHost(
  rng: Rng,
  ip: string,
  index: number,
  ordinal: number,
  row: LabBuildRow,
): Omit<LabHost, 'outcome'> {
  const family = familyOf(row.build) as Family;
  const wireBuild = WIRE_DRIFT[row.build] ?? row.build;
  let exposes: LabExposure;
  if (family === '2010') {
    exposes = { xOwaVersion: rng() < 0.7, exporttool: false, assetPath: 'full' };
  } else {
    // The first four Exchange hosts cycle through the profiles so small estates show each one.
    const [x, e] =
      ordinal < EXPOSURE_PROFILES.length ? (EXPOSURE_PROFILES[ordinal]?.[0] ?? [true, true]) : pickWeighted(rng, EXPOSURE_PROFILES);
    exposes = { xOwaVersion: x, exporttool: e, assetPath: 'cu' };
  }
  const exact = exposes.xOwaVersion || exposes.exporttool || exposes.assetPath === 'full';
  const [cert, hostname] = pickWeighted(
    rng,
    ORG_CERTS.map(([c, h, w]) => [[c, h] as const, w] as const),
  );
  const serverName = cert === 'exch-selfsigned' ? 'EXCH01' : serverNameFor(rng, ordinal);
  const variants = VARIANTS.exchange;
  return {
    ip,
    index,
    kind: 'exchange',
    // Most admins leave IIS's start page at "/"; some redirect it to /owa.
    variant: (ordinal < variants.length ? variants[ordinal] : rng() < 0.6 ? variants[0] : variants[1]) ?? 'root-iis-start',
    edition: row.edition,
    build: row.build,
    wireBuild,
    cu: row.cu,
    su: row.su,
    serverName,
    hostname,
    cert,
    ports: { https: true, http: rng() < 0.75 },
    exposes,
    expected: {
      product: 'ms-exchange',
      build: exact ? row.build : cuBuildOf(row.build),
      buildPrecision: exact ? 'exact' : 'cu',
      cu: row.cu,
    },
  };
}

function otherHost(rng: Rng, ip: string, index: number, ordinal: number, kind: Exclude<LabKind, 'exchange'>): Omit<LabHost, 'outcome'> {
  const variants = VARIANTS[kind];
  const variant = variants[ordinal % variants.length] ?? 'default';
  const base = {
    ip,
    index,
    kind,
    variant,
    edition: null,
    build: null,
    wireBuild: null,
    cu: null,
    su: null,
    serverName: null,
    exposes: NO_EXPOSURE,
    expected: NOT_EXCHANGE,
  };
  switch (kind) {
    case 'exchange-online': {
      const b = onlineBuild(rng);
      const fe = `${pick(rng, ['AM0PR', 'DB6PR', 'HE1PR', 'VI1PR', 'BN6PR', 'CY4PR'])}${String(10 + Math.floor(rng() * 80))}CA${String(Math.floor(rng() * 10000)).padStart(4, '0')}`;
      return {
        ...base,
        edition: 'Exchange Online',
        build: b,
        wireBuild: b,
        serverName: fe,
        hostname: 'outlook.office365.com',
        cert: 'outlook',
        ports: { https: true, http: true },
        exposes: { xOwaVersion: true, exporttool: false, assetPath: null },
        expected: { product: 'ms-exchange-online', build: null, buildPrecision: null, cu: null },
      };
    }
    case 'owa-phish':
      return { ...base, hostname: 'owa-login.secure-mailbox.example', cert: 'phish', ports: { https: true, http: rng() < 0.5 } };
    case 'iis':
    case 'nginx':
      return { ...base, hostname: 'www.golf.example', cert: 'web', ports: { https: true, http: true } };
    case 'closed':
      return { ...base, hostname: 'localhost', cert: 'localhost', ports: { https: false, http: false } };
    default:
      return { ...base, hostname: 'localhost', cert: 'localhost', ports: { https: true, http: true } };
  }
}

/** The expected outcome of a connection to one port of a host (pure; see LabOutcome). */
export function outcomeOf(kind: LabKind, variant: string, secure: boolean, open: boolean): LabOutcome {
  if (!open) return 'reset';
  switch (kind) {
    case 'tarpit':
    case 'slow-drip':
      return 'timeout';
    case 'garbage':
      return secure && variant !== 'tls-then-random' ? 'tls-error' : 'not-http';
    case 'oversized':
      return variant === 'body-50mb' ? 'http' : 'http-oversized';
    case 'hostile-headers':
      return variant === 'crlf-ish' ? 'http-malformed' : 'http';
    case 'closed':
      return 'reset';
    default:
      return 'http';
  }
}

function withOutcome(h: Omit<LabHost, 'outcome'>): LabHost {
  return {
    ...h,
    outcome: { https: outcomeOf(h.kind, h.variant, true, h.ports.https), http: outcomeOf(h.kind, h.variant, false, h.ports.http) },
  };
}

/**
 * Generates the estate: `hosts` consecutive addresses from `base`, kinds in the proportions of `mix`,
 * shuffled by `seed`. Same inputs, same estate (the ground truth of every test and benchmark).
 */
export function generateEstate(options: EstateOptions, builds: readonly LabBuildRow[]): LabHost[] {
  const { hosts: n, base, seed } = options;
  if (!Number.isInteger(n) || n < 1 || n > MAX_HOSTS) throw new RangeError(`hosts must be an integer in 1..${MAX_HOSTS}`);
  const baseInt = ipv4ToInt(base);
  if (baseInt === null || baseInt >>> 24 !== 127) throw new RangeError(`base must be an IPv4 address in 127.0.0.0/8, got "${base}"`);
  if (baseInt + n - 1 > 0x7fffffff) throw new RangeError(`${n} hosts from ${base} would leave 127.0.0.0/8`);
  const mix = options.mix ?? DEFAULT_MIX;
  const rng = prng(seed);
  const counts = kindCounts(n, mix);
  const kinds: LabKind[] = [];
  for (const k of LAB_KINDS) for (let i = 0; i < (counts.get(k) ?? 0); i++) kinds.push(k);
  // Fisher-Yates with the seeded PRNG.
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = kinds[i] as LabKind;
    kinds[i] = kinds[j] as LabKind;
    kinds[j] = t;
  }
  const model = buildModel(builds);
  if (model.later.length === 0 && (counts.get('exchange') ?? 0) > 0) throw new Error('the knowledge base has no usable Exchange builds');
  const showcase = SHOWCASE_BUILDS.map((b) => model.byBuild.get(b)).filter((r): r is LabBuildRow => r !== undefined);
  const ordinals = new Map<LabKind, number>();
  const out: LabHost[] = [];
  for (let i = 0; i < n; i++) {
    const kind = kinds[i] as LabKind;
    const ordinal = ordinals.get(kind) ?? 0;
    ordinals.set(kind, ordinal + 1);
    // Each host draws from its own stream so that changing one host's logic does not reshuffle the rest.
    const hrng = prng((seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
    const ip = intToIpv4(baseInt + i);
    if (kind === 'exchange') {
      const row = showcase[ordinal] ?? pickExchangeBuild(hrng, model);
      out.push(withOutcome(exchangeHost(hrng, ip, i, ordinal, row)));
    } else {
      out.push(withOutcome(otherHost(hrng, ip, i, ordinal, kind)));
    }
  }
  return out;
}

/** Counts for the CLI summary and reports: kinds, editions, exposure. */
export function summarizeEstate(hosts: readonly LabHost[]): {
  readonly kinds: Readonly<Record<string, number>>;
  readonly editions: Readonly<Record<string, number>>;
  readonly precision: Readonly<Record<string, number>>;
} {
  const kinds: Record<string, number> = {};
  const editions: Record<string, number> = {};
  const precision: Record<string, number> = {};
  for (const h of hosts) {
    kinds[h.kind] = (kinds[h.kind] ?? 0) + 1;
    if (h.kind === 'exchange' && h.edition !== null) editions[h.edition] = (editions[h.edition] ?? 0) + 1;
    if (h.expected.buildPrecision !== null) precision[h.expected.buildPrecision] = (precision[h.expected.buildPrecision] ?? 0) + 1;
  }
  return { kinds, editions, precision };
}
