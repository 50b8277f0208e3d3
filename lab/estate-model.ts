/**
 * The lab's vocabulary: host kinds and their variants, the named mixes, and the ground truth every host
 * carries (what it runs, what it exposes, what a correct non-intrusive scanner can know about it). Types
 * and constants only; the generator is estate.ts.
 */
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
  /** Id of the certificate (an id of LAB_CERT_SPECS in cert-store.ts). */
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
