/**
 * A MISP event in the MISP core format (draft-dulaunoy-misp-core-format: an `Event` object with its `Attribute`
 * list, `Orgc` and `Tag`), one per campaign or incident. Pure.
 *
 * Attribute choices:
 * - addresses are `ip-dst` in "Network activity" with `to_ids: false`: they are the VICTIMS (exposed or
 *   compromised servers of our constituency), never something to block or alert on;
 * - CVEs are `vulnerability` in "External analysis", `to_ids: false`;
 * - web-shell files are `filename` (or `filename|sha256` when the hash is known) in "Payload installation" with
 *   `to_ids: true`: those are what a defender should look for on their own servers.
 * Distribution follows the TLP level (red: this organisation only ... clear: all communities); every attribute
 * inherits the event's (`5`). Ids are name-based (uuid.ts) and timestamps come from the source, so a re-export of
 * unchanged facts is byte-identical.
 */
import { splitPath, type ExportSource, type Tlp } from './types.js';
import { uuidv5 } from './uuid.js';

export interface MispAttribute {
  readonly uuid: string;
  readonly type: 'ip-dst' | 'vulnerability' | 'filename' | 'filename|sha256';
  readonly category: 'Network activity' | 'External analysis' | 'Payload installation';
  readonly value: string;
  readonly to_ids: boolean;
  readonly comment: string;
  /** "5": inherit the event's distribution. */
  readonly distribution: '5';
  readonly timestamp: string;
}

export interface MispEvent {
  readonly uuid: string;
  readonly info: string;
  /** YYYY-MM-DD. */
  readonly date: string;
  /** 1 high, 2 medium, 3 low, 4 undefined. */
  readonly threat_level_id: '1' | '2' | '3' | '4';
  /** 0 initial, 1 ongoing, 2 completed. */
  readonly analysis: '0' | '1' | '2';
  /** 0 your organisation only, 1 this community only, 2 connected communities, 3 all communities. */
  readonly distribution: '0' | '1' | '2' | '3';
  readonly published: boolean;
  readonly timestamp: string;
  readonly Orgc: { readonly name: string; readonly uuid: string };
  readonly Tag: readonly { readonly name: string }[];
  readonly Attribute: readonly MispAttribute[];
}

export interface MispDocument {
  readonly Event: MispEvent;
}

const DISTRIBUTION: Readonly<Record<Tlp, MispEvent['distribution']>> = { clear: '3', green: '2', amber: '1', 'amber+strict': '1', red: '0' };

/** The scope every id of one export is derived from: the producer, the source and its creation time. */
export function sourceScope(s: ExportSource): string {
  return `${s.producer}|${s.kind}:${s.id}|${s.created.toISOString()}`;
}

export function buildMispEvent(s: ExportSource): MispDocument {
  const scope = sourceScope(s);
  const timestamp = String(Math.floor(s.modified.getTime() / 1000));
  const attr = (type: MispAttribute['type'], category: MispAttribute['category'], value: string, toIds: boolean, comment: string): MispAttribute => ({
    uuid: uuidv5(`misp-attribute|${scope}|${type}|${value}`), type, category, value, to_ids: toIds, comment, distribution: '5', timestamp,
  });
  const attributes: MispAttribute[] = [];
  for (const ip of s.ips) {
    const what = ip.compromised ? 'compromised' : 'exposed';
    const cves = ip.cves.length === 0 ? '' : `: ${ip.cves.join(', ')}`;
    attributes.push(attr('ip-dst', 'Network activity', ip.ip, false, `${what} server (victim, not an attacker)${cves}${ip.org === null ? '' : `; organisation: ${ip.org}`}`));
  }
  for (const cve of s.cves) attributes.push(attr('vulnerability', 'External analysis', cve, false, `exploited or exposed in this ${s.kind}`));
  for (const f of s.files) {
    const name = splitPath(f.path).name;
    if (f.sha256 === null) attributes.push(attr('filename', 'Payload installation', f.path, true, `web shell ${name}`));
    else attributes.push(attr('filename|sha256', 'Payload installation', `${f.path}|${f.sha256}`, true, `web shell ${name}`));
  }
  const compromised = s.files.length > 0 || s.ips.some((i) => i.compromised);
  return {
    Event: {
      uuid: uuidv5(`misp-event|${scope}`),
      info: `${s.kind === 'campaign' ? 'Campaign' : 'Incident'} ${s.id}: ${s.title}`,
      date: s.created.toISOString().slice(0, 10),
      threat_level_id: compromised ? '1' : '2',
      analysis: s.kind === 'campaign' ? '2' : '1',
      distribution: DISTRIBUTION[s.tlp],
      published: false,
      timestamp,
      Orgc: { name: s.producer, uuid: uuidv5(`organisation|${s.producer}`) },
      Tag: [{ name: `tlp:${s.tlp}` }],
      Attribute: attributes,
    },
  };
}
