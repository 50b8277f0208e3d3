/**
 * Detector: the X-OWA-Version response header. Exchange 2010 and later put the full build, security
 * update included, in this header on OWA, ECP, Autodiscover, EWS and ActiveSync responses (the front
 * end adds it to its anonymous 401s too). It is the most trustworthy build source we have.
 *
 * Facts: `build` (exact) and an `exchange-headers` signal per response that carries a valid value;
 * `exchange-online` when the build is 15.20 or later (only Exchange Online runs those).
 * A malformed, oversized or repeated-and-different value yields nothing: never a guess.
 */
import type { Detector, Fact, ProbeResponse } from '../sdk.js';
import { headerEvidence, isOnlineBuild, owaVersionHeader } from './common.js';
import { PROBE_AUTODISCOVER, PROBE_EXPORTTOOL, PROBE_OWA_LOGON } from './probes.js';

export const X_OWA_VERSION_ID = 'exchange-x-owa-version';

export const xOwaVersion: Detector = {
  id: X_OWA_VERSION_ID,
  revision: 1,
  product: 'ms-exchange',
  description: 'Reads the exact build (security update included) from the X-OWA-Version response header.',
  probes: [PROBE_OWA_LOGON, PROBE_EXPORTTOOL, PROBE_AUTODISCOVER],
  emits: ['signal:exchange-headers', 'build:exact', 'online'],
  references: [
    'https://learn.microsoft.com/en-us/exchange/new-features/build-numbers-and-release-dates',
    'https://github.com/righel/ms-exchange-version-nse',
  ],
  detect(responses: ReadonlyMap<string, ProbeResponse>): readonly Fact[] {
    const facts: Fact[] = [];
    for (const id of xOwaVersion.probes) {
      const r = responses.get(id);
      if (r === undefined) continue;
      const build = owaVersionHeader(r);
      if (build === null) continue;
      const evidence = headerEvidence(X_OWA_VERSION_ID, r, 'x-owa-version', build);
      facts.push({ kind: 'exchange-signal', signal: 'exchange-headers', evidence });
      facts.push({ kind: 'build', build, precision: 'exact', evidence });
      if (isOnlineBuild(build)) facts.push({ kind: 'exchange-online', evidence });
    }
    return facts;
  },
};
