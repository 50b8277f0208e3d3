/**
 * Detector: Exchange Online (Microsoft 365) front ends. Their proxy headers name back ends in
 * Microsoft's own domains, e.g. X-CalculatedBETarget: VI1PR08MB5342.eurprd08.prod.outlook.com,
 * X-CafeServer: VI1PR02CA0046.EURPRD02.PROD.OUTLOOK.COM. On-premises servers name their own hosts
 * there. (The 15.20.x builds that only Exchange Online runs are reported by the X-OWA-Version detector
 * and re-checked by the fingerprint for every build fact.)
 *
 * A Location header pointing at outlook.office365.com is NOT used: on-premises servers of migrated
 * organisations redirect OWA users there and are still on-premises servers.
 */
import type { Detector, Fact, ProbeResponse } from '../sdk.js';
import { EXCHANGE_SERVER_HEADERS, headerEvidence, headerValues, isOnlineHostName, isServerName, trimOws } from './common.js';
import { PROBE_AUTODISCOVER, PROBE_EXPORTTOOL, PROBE_OWA_LOGON } from './probes.js';

export const EXCHANGE_ONLINE_ID = 'exchange-online-front-end';

export const exchangeOnline: Detector = {
  id: EXCHANGE_ONLINE_ID,
  revision: 1,
  product: 'ms-exchange-online',
  description: 'Exchange Online front ends: proxy headers naming *.outlook.com (e.g. *.prod.outlook.com) back ends.',
  probes: [PROBE_OWA_LOGON, PROBE_EXPORTTOOL, PROBE_AUTODISCOVER],
  emits: ['online'],
  references: [
    'https://learn.microsoft.com/en-us/previous-versions/office/developer/o365-enterprise-developers/jj984308(v=office.15)',
    'https://learn.microsoft.com/en-us/exchange/new-features/build-numbers-and-release-dates',
  ],
  detect(responses: ReadonlyMap<string, ProbeResponse>): readonly Fact[] {
    for (const id of exchangeOnline.probes) {
      const r = responses.get(id);
      if (r === undefined) continue;
      for (const name of EXCHANGE_SERVER_HEADERS) {
        for (const raw of headerValues(r, name)) {
          const value = trimOws(raw);
          if (isServerName(value) && isOnlineHostName(value)) {
            return [{ kind: 'exchange-online', evidence: headerEvidence(EXCHANGE_ONLINE_ID, r, name, value) }];
          }
        }
      }
    }
    return [];
  },
};
