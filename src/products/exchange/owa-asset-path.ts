/**
 * Detector: the versioned asset path in the OWA logon page.
 * - Exchange 2013, 2016, 2019 and SE: `/owa/auth/15.1.2176/themes/...`: three parts, the cumulative
 *   update only (the folder does not change with security updates), so precision "cu".
 * - Exchange 2010 and 2007: `/owa/14.3.513.0/themes/...`, `/owa/8.3.485.1/themes/...`: the full build
 *   (rollups included), precision "exact".
 *
 * The body is hostile and may be a phishing clone: this detector's signal is `owa-page`, the same kind
 * as the page markers, because a clone copies asset paths along with the rest of the page. Builds that
 * disagree inside one page are all reported (at most three); the fingerprint notes the conflict.
 * Implementation: Buffer.indexOf over the capped body, no regex over the whole body.
 */
import type { Detector, Fact, ProbeResponse } from '../sdk.js';
import { bodyEvidence, findAssetBuilds } from './common.js';
import { PROBE_OWA_LOGON } from './probes.js';

export const OWA_ASSET_PATH_ID = 'exchange-owa-asset-path';

export const owaAssetPath: Detector = {
  id: OWA_ASSET_PATH_ID,
  revision: 1,
  product: 'ms-exchange',
  description:
    'Reads the build from OWA asset paths in the logon page: /owa/auth/15.x.y/ (2013+, CU precision) or /owa/14.x.y.z/ and /owa/8.x.y.z/ (2010/2007, exact).',
  probes: [PROBE_OWA_LOGON],
  emits: ['signal:owa-page', 'build:cu', 'build:exact'],
  references: [
    'https://learn.microsoft.com/en-us/exchange/new-features/build-numbers-and-release-dates',
    'https://github.com/righel/ms-exchange-version-nse',
  ],
  detect(responses: ReadonlyMap<string, ProbeResponse>): readonly Fact[] {
    const r = responses.get(PROBE_OWA_LOGON);
    if (r === undefined) return [];
    const hits = findAssetBuilds(r.body);
    const first = hits[0];
    if (first === undefined) return [];
    const facts: Fact[] = [
      { kind: 'exchange-signal', signal: 'owa-page', evidence: bodyEvidence(OWA_ASSET_PATH_ID, r, first.at, first.len, 'asset-path') },
    ];
    for (const h of hits) {
      facts.push({ kind: 'build', build: h.build, precision: h.precision, evidence: bodyEvidence(OWA_ASSET_PATH_ID, r, h.at, h.len, 'asset-path') });
    }
    return facts;
  },
};
