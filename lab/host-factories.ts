/**
 * Host factories: one simulated host of a given kind, with its name, certificate, open ports, exposure
 * and expected outcome per port. Each factory draws from the host's own PRNG stream (estate.ts).
 */
import { familyOf, WIRE_DRIFT, type Family } from './build-model.js';
import { VARIANTS, type LabBuildRow, type LabExpected, type LabExposure, type LabHost, type LabKind, type LabOutcome } from './estate-model.js';
import { pick, pickWeighted, type Rng } from './prng.js';


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

export function exchangeHost(
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

export function otherHost(rng: Rng, ip: string, index: number, ordinal: number, kind: Exclude<LabKind, 'exchange'>): Omit<LabHost, 'outcome'> {
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

export function withOutcome(h: Omit<LabHost, 'outcome'>): LabHost {
  return {
    ...h,
    outcome: { https: outcomeOf(h.kind, h.variant, true, h.ports.https), http: outcomeOf(h.kind, h.variant, false, h.ports.http) },
  };
}
