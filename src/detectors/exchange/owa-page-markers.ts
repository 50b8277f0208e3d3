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
import { bodyEvidence, needle, statusEvidence, urlPath } from './common.js';
import { PROBE_OWA_LOGON } from './probes.js';

export const OWA_PAGE_MARKERS_ID = 'exchange-owa-page-markers';

/**
 * Ordered by where OWA puts them: <head> markers first, so that a real page is settled after reading
 * its first kilobyte (a missing marker costs a scan of the whole window; a found one stops early).
 */
const MARKERS: ReadonlyArray<{ readonly label: string; readonly bytes: Buffer }> = [
  { label: 'owapage-comment', bytes: needle('OwaPage = ASP.auth_logon_aspx') },
  { label: 'title-outlook', bytes: needle('<title>Outlook</title>') },
  { label: 'title-owa', bytes: needle('Outlook Web App') },
  { label: 'title-owa-2007', bytes: needle('Outlook Web Access') },
  { label: 'logon-form', bytes: needle('name="logonForm"') },
  { label: 'form-action-2013', bytes: needle('action="/owa/auth.owa"') },
  { label: 'form-action-2010', bytes: needle('/owa/auth/owaauth.dll') },
  { label: 'forcedownlevel', bytes: needle('name="forcedownlevel"') },
  { label: 'clklgn-script', bytes: needle('clkLgn()') },
];
/** Two distinct markers make the signal; searching stops there. */
const MIN_MARKERS = 2;
/** OWA logon pages are about 60 KB with the form near the end; markers further in are not looked for. */
const WINDOW = 128 * 1024;

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
    const body = r.body.length > WINDOW ? r.body.subarray(0, WINDOW) : r.body;
    for (const m of MARKERS) {
      if (count >= MIN_MARKERS) break;
      const at = body.indexOf(m.bytes);
      if (at < 0) continue;
      count++;
      first ??= bodyEvidence(OWA_PAGE_MARKERS_ID, r, at, m.bytes.length, m.label);
    }
    if (count < MIN_MARKERS || first === null) return [];
    return [{ kind: 'exchange-signal', signal: 'owa-page', evidence: first }];
  },
};
