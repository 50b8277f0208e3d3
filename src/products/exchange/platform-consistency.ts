/**
 * Detector: claims that contradict the rest of what the host shows (honeypot tells).
 *
 * 1. Platform (`topic: "platform"`): an Exchange build (X-OWA-Version or the OWA asset path) that cannot
 *    run on the IIS version in the Server header of the logon page. Each Exchange version installs only
 *    on certain Windows Server releases, hence certain IIS versions (IIS_PLATFORM_TABLE in common.ts, with
 *    provenance): a 2016 page served with "Server: Microsoft-IIS/7.5" (the captured OWA honeypot in
 *    ../shared/data/samples/owa/ is served exactly so), or IIS 10 claiming Exchange 2010 or 2013.
 * 2. Missing manifest (`topic: "missing-manifest"`): X-OWA-Version claims an exact 2013+ build, yet the
 *    export tool ClickOnce manifest, which every 2013+ server serves at /ecp/Current/exporttool/, answered
 *    404 at that very path. (The plan asks for the manifest whenever the platform contradicts the claim.)
 *
 * Copyable headers are not proof: the fingerprint (fingerprint.ts) keeps an exact build despite a
 * contradiction only when the export tool manifest confirms it; otherwise it reports the CU at most with a
 * "suspected honeypot" note, or, with both contradictions and nothing but copyable signals, not Exchange.
 */
import type { Detector, Fact, ProbeResponse } from '../sdk.js';
import {
  findAssetBuilds,
  formatIis,
  headerEvidence,
  headerValues,
  iisOfResponse,
  isExporttoolNotFound,
  isOnlineBuild,
  owaVersionHeader,
  platformContradiction,
  statusEvidence,
  trimOws,
} from './common.js';
import { PROBE_AUTODISCOVER, PROBE_EXPORTTOOL, PROBE_OWA_LOGON, PROBE_OWA_ROOT } from './probes.js';

export const PLATFORM_CONSISTENCY_ID = 'exchange-platform-consistency';

/** Exact on-premises builds claimed by X-OWA-Version on the probes that carry it. */
function headerClaims(responses: ReadonlyMap<string, ProbeResponse>): string[] {
  const out: string[] = [];
  for (const id of [PROBE_OWA_LOGON, PROBE_AUTODISCOVER]) {
    const r = responses.get(id);
    const v = r === undefined ? null : owaVersionHeader(r);
    if (v !== null && !isOnlineBuild(v) && !out.includes(v)) out.push(v);
  }
  return out;
}

export const platformConsistency: Detector = {
  id: PLATFORM_CONSISTENCY_ID,
  revision: 2,
  product: 'ms-exchange',
  description:
    'Flags an Exchange build (asset path or X-OWA-Version) that cannot run on the IIS version in the Server header, and a claimed ' +
    '2013+ exact build whose export tool manifest answers 404 (honeypot tells).',
  probes: [PROBE_OWA_LOGON, PROBE_OWA_ROOT, PROBE_EXPORTTOOL, PROBE_AUTODISCOVER],
  emits: ['inconsistency'],
  references: [
    'https://learn.microsoft.com/en-us/exchange/plan-and-deploy/supportability-matrix',
    'https://learn.microsoft.com/en-us/previous-versions/office/exchange-server-2010/aa996719(v=exchg.141)',
    'https://github.com/joda32/owa-honeypot',
  ],
  detect(responses: ReadonlyMap<string, ProbeResponse>): readonly Fact[] {
    const facts: Fact[] = [];
    const logon = responses.get(PROBE_OWA_LOGON);
    const claims = headerClaims(responses);
    if (logon !== undefined) {
      const iis = iisOfResponse(logon);
      if (iis !== null) {
        const builds = [...findAssetBuilds(logon.body).map((h) => h.build), ...claims];
        const c = platformContradiction(iis, builds);
        if (c !== null) {
          const server = trimOws(headerValues(logon, 'server')[0] ?? '');
          facts.push({
            kind: 'inconsistency',
            topic: 'platform',
            reason: `${c.row.edition} build ${c.build} cannot run on IIS ${formatIis(c.iis)} (it runs on IIS ${c.row.iis.map(formatIis).join(', ')}: ${c.row.why})`.slice(0, 200),
            evidence: headerEvidence(PLATFORM_CONSISTENCY_ID, logon, 'server', server),
          });
        }
      }
    }
    const manifest = responses.get(PROBE_EXPORTTOOL);
    const claimed2013plus = claims.find((b) => b.startsWith('15.'));
    if (manifest !== undefined && claimed2013plus !== undefined && isExporttoolNotFound(manifest)) {
      facts.push({
        kind: 'inconsistency',
        topic: 'missing-manifest',
        reason: `X-OWA-Version claims ${claimed2013plus}, but the export tool manifest that Exchange 2013 and later serve answered 404`,
        evidence: statusEvidence(PLATFORM_CONSISTENCY_ID, manifest, `${manifest.status} at the export tool path`),
      });
    }
    return facts;
  },
};
