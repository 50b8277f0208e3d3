/**
 * Detector: OWA's forms-based-authentication redirect. An Exchange server answers GET /owa/ with
 * 302 Location: https://<host>/owa/auth/logon.aspx?url=https://<host>/owa/&reason=0 (URL-encoded on
 * 2013 and later). The engine follows that same-target redirect, so we see either the 302 itself
 * (redirect not followed) or, after at least one followed redirect, the FBA logon URL as the final URL.
 *
 * This is the server's routing, not its page body, so it is its own signal kind (`owa-fba-redirect`):
 * a phishing clone copies the page but rarely the IIS/OWA routing. The plan asks for it only when a
 * page was seen without Exchange headers or manifest (e.g. Exchange 2010 with X-OWA-Version stripped).
 */
import type { Detector, Fact, ProbeResponse } from '../sdk.js';
import { fbaRedirectOf, headerEvidence, statusEvidence } from './common.js';
import { PROBE_OWA_ROOT } from './probes.js';

export const OWA_FBA_REDIRECT_ID = 'exchange-owa-fba-redirect';

export const owaFbaRedirect: Detector = {
  id: OWA_FBA_REDIRECT_ID,
  revision: 1,
  product: 'ms-exchange',
  description: "GET /owa/ answered with OWA's forms-based-authentication redirect to /owa/auth/logon.aspx?url=...&reason=N (server routing, not page content).",
  probes: [PROBE_OWA_ROOT],
  emits: ['signal:owa-fba-redirect'],
  references: [
    'https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/owaurl-pox',
    'https://github.com/righel/ms-exchange-version-nse',
  ],
  detect(responses: ReadonlyMap<string, ProbeResponse>): readonly Fact[] {
    const r = responses.get(PROBE_OWA_ROOT);
    if (r === undefined) return [];
    const fba = fbaRedirectOf(r);
    if (fba === null) return [];
    const evidence =
      fba.via === 'location'
        ? headerEvidence(OWA_FBA_REDIRECT_ID, r, 'location', fba.location)
        : statusEvidence(OWA_FBA_REDIRECT_ID, r, `GET /owa/ redirected to ${fba.url}`);
    return [{ kind: 'exchange-signal', signal: 'owa-fba-redirect', evidence }];
  },
};
