/**
 * Detector: Exchange builds that cannot run on the web server the host reports. Each Exchange version
 * installs only on certain Windows Server releases, hence a minimum IIS: 2007 needs IIS 6.0+, 2010
 * IIS 7.0+, 2013 IIS 7.5+ (Windows Server 2008 R2), 2016 IIS 8.0+ (2012), 2019 and SE IIS 10.0+
 * (2016 and later). A 2016 logon page served with "Server: Microsoft-IIS/7.5" is a honeypot tell
 * (the captured OWA honeypot page in ../shared/data/samples/owa/ is served exactly so).
 *
 * States an `inconsistency`; the fingerprint lets it veto only services whose other evidence is
 * copyable (page body, /owa/ routing): with Exchange headers or the export tool manifest a reverse
 * proxy in front of a real server is the likelier story, and the conflict is only noted.
 */
import type { Detector, Fact, ProbeResponse } from '../sdk.js';
import { buildParts, findAssetBuilds, headerEvidence, headerValues, owaVersionHeader, trimOws } from './common.js';
import { PROBE_OWA_LOGON, PROBE_OWA_ROOT } from './probes.js';

export const PLATFORM_CONSISTENCY_ID = 'exchange-platform-consistency';

/** Minimum IIS version (major*10+minor) per Exchange major.minor. */
function minIis(build: string): number | null {
  const [major, minor] = buildParts(build);
  if (major === 15) return minor === 0 ? 75 : minor === 1 ? 80 : minor === 2 ? 100 : null;
  if (major === 14) return 70;
  if (major === 8) return 60;
  return null;
}

/** "Microsoft-IIS/7.5" → 75; anything else → null. */
function iisVersion(server: string): number | null {
  const m = /^Microsoft-IIS\/(\d{1,2})\.(\d)$/.exec(server);
  if (m === null) return null;
  return Number(m[1]) * 10 + Number(m[2]);
}

export const platformConsistency: Detector = {
  id: PLATFORM_CONSISTENCY_ID,
  revision: 1,
  product: 'ms-exchange',
  description: 'Flags an Exchange build (asset path or X-OWA-Version) that cannot run on the IIS version in the Server header (honeypot tell).',
  probes: [PROBE_OWA_LOGON, PROBE_OWA_ROOT],
  emits: ['inconsistency'],
  references: [
    'https://learn.microsoft.com/en-us/exchange/plan-and-deploy/supportability-matrix',
    'https://github.com/joda32/owa-honeypot',
  ],
  detect(responses: ReadonlyMap<string, ProbeResponse>): readonly Fact[] {
    const r = responses.get(PROBE_OWA_LOGON);
    if (r === undefined) return [];
    const raw = headerValues(r, 'server')[0];
    if (raw === undefined || raw.length > 64) return [];
    const server = trimOws(raw);
    const iis = iisVersion(server);
    if (iis === null) return [];
    const builds = findAssetBuilds(r.body).map((h) => h.build);
    const header = owaVersionHeader(r);
    if (header !== null) builds.push(header);
    for (const b of builds) {
      const min = minIis(b);
      if (min !== null && iis < min) {
        return [
          {
            kind: 'inconsistency',
            reason: `Exchange build ${b} cannot run on IIS ${Math.floor(iis / 10)}.${iis % 10} (needs ${Math.floor(min / 10)}.${min % 10} or later)`,
            evidence: headerEvidence(PLATFORM_CONSISTENCY_ID, r, 'server', server),
          },
        ];
      }
    }
    return [];
  },
};
