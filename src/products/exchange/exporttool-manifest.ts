/**
 * Detector: the eDiscovery export tool ClickOnce manifest that ECP serves to anonymous clients at
 * /ecp/<version>/exporttool/microsoft.exchange.ediscovery.exporttool.application ("Current" is an
 * alias of the installed version). Its deployment `<assemblyIdentity ... version="15.1.2176.9">` is
 * the exact build on Exchange 2013 and later.
 *
 * A clone or honeypot that answers 200 to every path does not have this: we require status 200, the
 * final URL still at the ECP exporttool path (no redirect elsewhere), and a first `<assemblyIdentity>`
 * element whose name is the export tool's and whose version is a 4-part 15.x build.
 * Facts: `exporttool-manifest` signal and an exact `build`.
 */
import type { Detector, Fact, ProbeResponse } from '../sdk.js';
import { bodyEvidence, parseExporttoolManifest } from './common.js';
import { PROBE_EXPORTTOOL } from './probes.js';

export const EXPORTTOOL_MANIFEST_ID = 'exchange-exporttool-manifest';

export const exporttoolManifest: Detector = {
  id: EXPORTTOOL_MANIFEST_ID,
  revision: 1,
  product: 'ms-exchange',
  description: 'Reads the exact build from the ECP eDiscovery export tool ClickOnce manifest (<assemblyIdentity version>).',
  probes: [PROBE_EXPORTTOOL],
  emits: ['signal:exporttool-manifest', 'build:exact'],
  references: [
    'https://github.com/righel/ms-exchange-version-nse',
    'https://learn.microsoft.com/en-us/exchange/policy-and-compliance/ediscovery/export-results',
  ],
  detect(responses: ReadonlyMap<string, ProbeResponse>): readonly Fact[] {
    const r = responses.get(PROBE_EXPORTTOOL);
    if (r === undefined) return [];
    const id = parseExporttoolManifest(r);
    if (id === null) return [];
    const evidence = bodyEvidence(EXPORTTOOL_MANIFEST_ID, r, id.at, id.len, 'assemblyIdentity');
    return [
      { kind: 'exchange-signal', signal: 'exporttool-manifest', evidence },
      { kind: 'build', build: id.build, precision: 'exact', evidence },
    ];
  },
};
