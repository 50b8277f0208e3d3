/**
 * Detector: headers that Exchange's HTTP proxy (the client access front end, "CAFE", 2013 and later)
 * and its back ends add to responses: X-FEServer (front-end server name), X-CalculatedBETarget and
 * X-TargetBEServer (back-end FQDN), X-BEServer, X-DiagInfo, X-CafeServer. Ordinary web servers and
 * phishing kits do not send them; honeypots and C2 profiles that imitate Exchange sometimes do, which
 * is why this is only one signal kind (`exchange-headers`, shared with X-OWA-Version).
 *
 * A value counts only if it looks like a server name (letters, digits, dots, hyphens); hostile values
 * (control characters, markup, absurd length) are ignored. One signal per response at most.
 */
import type { Detector, Fact, ProbeResponse } from '../sdk.js';
import { EXCHANGE_SERVER_HEADERS, headerEvidence, headerValues, isServerName, trimOws } from './common.js';
import { PROBE_AUTODISCOVER, PROBE_EXPORTTOOL, PROBE_OWA_LOGON } from './probes.js';

export const EXCHANGE_HEADERS_ID = 'exchange-server-headers';

/** The first Exchange server header of a response with a well-formed value, if any. */
export function firstServerHeader(r: ProbeResponse): { name: string; value: string } | null {
  for (const name of EXCHANGE_SERVER_HEADERS) {
    for (const raw of headerValues(r, name)) {
      const value = trimOws(raw);
      if (isServerName(value)) return { name, value };
    }
  }
  return null;
}

export const exchangeHeaders: Detector = {
  id: EXCHANGE_HEADERS_ID,
  revision: 1,
  product: 'ms-exchange',
  description: 'Exchange front-end/back-end headers (X-FEServer, X-CalculatedBETarget, X-BEServer, X-DiagInfo, X-CafeServer) with well-formed server names.',
  probes: [PROBE_OWA_LOGON, PROBE_EXPORTTOOL, PROBE_AUTODISCOVER],
  emits: ['signal:exchange-headers'],
  references: [
    'https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/instrumenting-client-requests-for-ews-and-rest-in-exchange',
  ],
  detect(responses: ReadonlyMap<string, ProbeResponse>): readonly Fact[] {
    const facts: Fact[] = [];
    for (const id of exchangeHeaders.probes) {
      const r = responses.get(id);
      if (r === undefined) continue;
      const h = firstServerHeader(r);
      if (h === null) continue;
      facts.push({ kind: 'exchange-signal', signal: 'exchange-headers', evidence: headerEvidence(EXCHANGE_HEADERS_ID, r, h.name, h.value) });
    }
    return facts;
  },
};
