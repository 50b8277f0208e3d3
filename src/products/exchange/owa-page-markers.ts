/**
 * Detector: markers of the OWA logon page (2007 to SE): the "OwaPage = ASP.auth_logon_aspx" comment,
 * the logon form (name="logonForm", action /owa/auth.owa on 2013+ or /owa/auth/owaauth.dll on
 * 2007/2010), its hidden fields and script (clkLgn, forcedownlevel), the product titles, or OWA's own
 * error page (/owa/auth/errorFE.aspx) reached by a same-target redirect.
 *
 * Phishing kits copy all of this, so the markers are ONE signal kind (`owa-page`), never enough alone.
 * At least two distinct markers are required: a single "Outlook" in a title proves nothing.
 */
import type { Detector, Evidence, Fact, ProbeResponse } from '../sdk.js';
import { bodyEvidence, findPageMarkers, statusEvidence, urlPath } from './common.js';
import { PROBE_OWA_LOGON } from './probes.js';

export const OWA_PAGE_MARKERS_ID = 'exchange-owa-page-markers';
/** Two distinct markers (or one plus OWA's error page) make the signal. */
const MIN_MARKERS = 2;

function errorPageRedirect(r: ProbeResponse): string | null {
  if (urlPath(r.url).startsWith('/owa/auth/errorfe.aspx')) return r.url;
  for (const u of r.redirects) if (urlPath(u).startsWith('/owa/auth/errorfe.aspx')) return u;
  return null;
}

export const owaPageMarkers: Detector = {
  id: OWA_PAGE_MARKERS_ID,
  revision: 1,
  product: 'ms-exchange',
  description: 'OWA logon page markers (form, fields, script, titles, OWA error page); needs two distinct markers; one signal kind only, since clones copy them.',
  probes: [PROBE_OWA_LOGON],
  emits: ['signal:owa-page'],
  references: [
    'https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/owaurl-pox',
    'https://github.com/righel/ms-exchange-version-nse',
  ],
  detect(responses: ReadonlyMap<string, ProbeResponse>): readonly Fact[] {
    const r = responses.get(PROBE_OWA_LOGON);
    if (r === undefined) return [];
    let count = 0;
    let first: Evidence | null = null;
    const errorPage = errorPageRedirect(r);
    if (errorPage !== null) {
      count++;
      first = statusEvidence(OWA_PAGE_MARKERS_ID, r, `redirected to ${errorPage}`);
    }
    for (const m of findPageMarkers(r.body)) {
      if (count >= MIN_MARKERS) break;
      count++;
      first ??= bodyEvidence(OWA_PAGE_MARKERS_ID, r, m.at, m.len, m.label);
    }
    if (count < MIN_MARKERS || first === null) return [];
    return [{ kind: 'exchange-signal', signal: 'owa-page', evidence: first }];
  },
};
