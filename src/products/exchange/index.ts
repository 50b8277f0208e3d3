/**
 * The Exchange product plugin: its probe plan, detectors, fingerprint, knowledge base, CVE groups, report
 * policy and table display behind the Product interface (sdk.ts). The only module outside this folder
 * that names it is the registry (src/products/registry.ts), which lists the products.
 */
import type { Detector, Fact, Product, ProductFingerprint } from '../sdk.js';
import { exchangeHeaders } from './exchange-headers.js';
import { exchangeOnline } from './exchange-online.js';
import { exporttoolManifest } from './exporttool-manifest.js';
import { httpServerProduct } from './http-server-product.js';
import { owaAssetPath } from './owa-asset-path.js';
import { owaFbaRedirect } from './owa-fba-redirect.js';
import { owaPageMarkers } from './owa-page-markers.js';
import { platformConsistency } from './platform-consistency.js';
import { xOwaVersion } from './x-owa-version.js';
import { EXCHANGE_PROBES, nextProbes } from './probes.js';
import { fingerprintExchange } from './fingerprint.js';
import { exchangeKbTables, loadCveGroups, loadExchangeKb, primeExchangeKb, type KbTables } from './kb/index.js';
import type { CveGroups } from '../sdk.js';

/** The record `product` of on-premises Exchange. */
export const EXCHANGE_ID = 'ms-exchange';
/** Exchange Online / Microsoft 365 front ends: named for the record, never assessed, never a server. */
export const EXCHANGE_ONLINE_ID = 'ms-exchange-online';

/** Every Exchange detector, in the order they run. Listing is explicit on purpose: no directory scanning at run time. */
export const EXCHANGE_DETECTORS: readonly Detector[] = [
  xOwaVersion,
  exporttoolManifest,
  owaAssetPath,
  exchangeHeaders,
  owaPageMarkers,
  owaFbaRedirect,
  exchangeOnline,
  platformConsistency,
  httpServerProduct,
];

const ONLINE_NOTE = 'Exchange Online front end: not an on-premises server, no verdicts';

/** The Exchange fingerprint, saying in the record why a Microsoft 365 front end gets no verdicts. */
function fingerprint(facts: readonly Fact[]): ProductFingerprint {
  const fp = fingerprintExchange(facts);
  return fp.product === EXCHANGE_ONLINE_ID ? { ...fp, notes: [...fp.notes, ONLINE_NOTE] } : fp;
}

let groups: CveGroups | undefined;

function isKbTables(x: unknown): x is KbTables {
  if (typeof x !== 'object' || x === null) return false;
  const t = x as Partial<Record<keyof KbTables, unknown>>;
  return typeof t.version === 'string' && Array.isArray(t.builds) && Array.isArray(t.fixes) && Array.isArray(t.cves);
}

export const exchange: Product = {
  id: EXCHANGE_ID,
  name: 'Exchange',
  probes: EXCHANGE_PROBES,
  nextProbes,
  detectors: EXCHANGE_DETECTORS,
  fingerprint,
  kb: {
    load: loadExchangeKb,
    tables: exchangeKbTables,
    prime(tables: unknown): void {
      // A worker receives what the main thread's `tables()` produced; anything else is our bug.
      if (!isKbTables(tables)) throw new TypeError('exchange.kb.prime: not the tables exchange.kb.tables() produces');
      primeExchangeKb(tables);
    },
  },
  cveGroups(): CveGroups {
    // The headline list alone (two small files) when the whole knowledge base is not needed (`tocsin report`).
    groups ??= loadCveGroups();
    return groups;
  },
  report: {
    countedApart: [EXCHANGE_ONLINE_ID],
    patchedNeedsBuild: true,
    serversLabel: 'on-premises Exchange',
    definition:
      'patched = Exchange server (distinct IP) with a build seen and no headline CVE vulnerable or indeterminate; ' +
      'vulnerable = at least one headline CVE vulnerable; undetermined = the rest; patchedShare = patched / servers; ' +
      'headline CVEs = {headline}; other CVEs do not count here ' +
      '(a host\'s `vulnerable` in `tocsin scan` and `tocsin results` output lists every CVE of the knowledge base)',
  },
  display: {
    column: 'EXCHANGE',
    cell: (edition, cu) => `${edition === null ? '?' : edition.replace(/^Exchange Server /, '')} ${cu ?? '?'}`,
    related: { [EXCHANGE_ONLINE_ID]: 'Online' },
  },
};
