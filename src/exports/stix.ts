/**
 * A STIX 2.1 bundle per campaign or incident (OASIS STIX 2.1, sections 3-7 and 9 "Patterning"). Pure.
 *
 * Objects: the CERT's `identity` (created_by_ref of everything), the TLP 2.0 `marking-definition` (the official
 * OASIS objects and ids, extension-definition--60a3c5c5-...), one `indicator` per address (`[ipv4-addr:value = ...]`
 * or `[ipv6-addr:value = ...]`, indicator_types `compromised` or `unknown`: victims, not attackers), one per
 * web-shell file (`[file:name = ... AND file:parent_directory_ref.path = ...]`, `malicious-activity`), one
 * `vulnerability` per CVE (external reference `cve`), a `malware` "web shell" object when files were found, the
 * relationships (address indicator `related-to` each of its CVEs, file indicator `indicates` the web shell), and a
 * `report` that lists them all.
 *
 * Ids are version-5 UUIDs of the content (uuid.ts) within the source's scope, and `created`/`modified` are the
 * source's own times (the marking definitions keep their published time), so an unchanged source exports to
 * identical bytes. Pattern string literals escape `\` and `'` (the only two escapes the grammar has).
 */
import { sourceScope } from './misp.js';
import { splitPath, type ExportSource, type FileIndicator, type IpIndicator, type Tlp } from './types.js';
import { uuidv5 } from './uuid.js';

/** OASIS TLP 2.0 property extension (cti-stix-common-objects). */
export const TLP2_EXTENSION = 'extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d';

/** The official STIX 2.1 marking-definition ids of TLP 2.0 (FIRST TLP 2.0, published 2022-10-01). */
export const TLP2_MARKINGS: Readonly<Record<Tlp, string>> = {
  clear: 'marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487',
  green: 'marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb',
  amber: 'marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421',
  'amber+strict': 'marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003',
  red: 'marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1',
};
const TLP2_CREATED = '2022-10-01T00:00:00.000Z';
/** The identity object is the same in every export of one CERT: its times are a constant, not an export's. */
const IDENTITY_CREATED = '2021-03-02T00:00:00.000Z';

export type StixObject = Readonly<Record<string, unknown>> & { readonly type: string; readonly id: string };

export interface StixBundle {
  readonly type: 'bundle';
  readonly id: string;
  readonly objects: readonly StixObject[];
}

/** A STIX pattern string literal: `'...'` with `\` and `'` escaped. */
export function stixString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export function ipPattern(ip: string): string {
  return `[${ip.includes(':') ? 'ipv6-addr' : 'ipv4-addr'}:value = ${stixString(ip)}]`;
}

export function filePattern(f: FileIndicator): string {
  const { dir, name } = splitPath(f.path);
  const parts = [`file:name = ${stixString(name)}`];
  if (dir !== null) parts.push(`file:parent_directory_ref.path = ${stixString(dir)}`);
  if (f.sha256 !== null) parts.push(`file:hashes.'SHA-256' = ${stixString(f.sha256)}`);
  return `[${parts.join(' AND ')}]`;
}

export function buildStixBundle(s: ExportSource): StixBundle {
  const scope = sourceScope(s);
  const id = (type: string, key: string): string => `${type}--${uuidv5(`stix|${scope}|${type}|${key}`)}`;
  const created = s.created.toISOString();
  const modified = s.modified.toISOString();
  const identityId = `identity--${uuidv5(`stix-identity|${s.producer}`)}`;
  const marking = TLP2_MARKINGS[s.tlp];
  const common = { spec_version: '2.1', created, modified, created_by_ref: identityId, object_marking_refs: [marking] };

  const identity: StixObject = {
    type: 'identity', spec_version: '2.1', id: identityId, created: IDENTITY_CREATED, modified: IDENTITY_CREATED,
    name: s.producer, identity_class: 'organization', sectors: ['government-national'],
  };
  const markingDef: StixObject = {
    type: 'marking-definition', spec_version: '2.1', id: marking, created: TLP2_CREATED, name: `TLP:${s.tlp.toUpperCase()}`,
    extensions: { [TLP2_EXTENSION]: { extension_type: 'property-extension', tlp_2_0: s.tlp } },
  };
  const vulns = new Map<string, StixObject>();
  for (const cve of s.cves) {
    vulns.set(cve, {
      type: 'vulnerability', id: id('vulnerability', cve), ...common, name: cve,
      external_references: [{ source_name: 'cve', external_id: cve, url: `https://www.cve.org/CVERecord?id=${encodeURIComponent(cve)}` }],
    });
  }
  const indicators: StixObject[] = [];
  const relationships: StixObject[] = [];
  const ipIndicator = (ip: IpIndicator): StixObject => ({
    type: 'indicator', id: id('indicator', `ip|${ip.ip}`), ...common,
    name: `${ip.compromised ? 'Compromised' : 'Exposed'} server ${ip.ip}`,
    description: `A server of our constituency (a victim, not an attacker)${ip.cves.length === 0 ? '' : `, exposed to ${ip.cves.join(', ')}`}${ip.org === null ? '' : `; organisation: ${ip.org}`}`,
    indicator_types: [ip.compromised ? 'compromised' : 'unknown'],
    pattern: ipPattern(ip.ip), pattern_type: 'stix', pattern_version: '2.1', valid_from: created,
  });
  for (const ip of s.ips) {
    const ind = ipIndicator(ip);
    indicators.push(ind);
    for (const cve of ip.cves) {
      const v = vulns.get(cve);
      if (v === undefined) continue;
      relationships.push({ type: 'relationship', id: id('relationship', `${ind.id}|related-to|${v.id}`), ...common, relationship_type: 'related-to', source_ref: ind.id, target_ref: v.id });
    }
  }
  let malware: StixObject | null = null;
  if (s.files.length > 0) {
    malware = { type: 'malware', id: id('malware', 'web-shell'), ...common, name: `Web shell (${s.kind} ${s.id})`, malware_types: ['webshell'], is_family: false };
  }
  for (const f of s.files) {
    const ind: StixObject = {
      type: 'indicator', id: id('indicator', `file|${f.path}`), ...common, name: `Web shell ${splitPath(f.path).name}`,
      indicator_types: ['malicious-activity'], pattern: filePattern(f), pattern_type: 'stix', pattern_version: '2.1', valid_from: created,
    };
    indicators.push(ind);
    if (malware !== null) relationships.push({ type: 'relationship', id: id('relationship', `${ind.id}|indicates|${malware.id}`), ...common, relationship_type: 'indicates', source_ref: ind.id, target_ref: malware.id });
  }
  const content: StixObject[] = [...indicators, ...vulns.values(), ...(malware === null ? [] : [malware]), ...relationships];
  const report: StixObject = {
    type: 'report', id: id('report', 'report'), ...common, name: `${s.kind === 'campaign' ? 'Campaign' : 'Incident'} ${s.id}: ${s.title}`,
    report_types: [s.kind === 'campaign' ? 'vulnerability' : 'threat-report'], published: modified,
    object_refs: content.length === 0 ? [identityId] : content.map((o) => o.id),
  };
  return { type: 'bundle', id: `bundle--${uuidv5(`stix-bundle|${scope}`)}`, objects: [identity, markingDef, ...content, report] };
}
