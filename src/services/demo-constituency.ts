/**
 * The demo's constituency: organisations in several sectors owning the lab's loopback networks, so `tocsin demo`
 * can show attribution by every rule on the lab it scans. Pure: it returns the texts a CERT would import (a
 * constituency CSV for `tocsin constituency import` and a prefix-to-ASN table for `tocsin attribution prefixes
 * import`), and the demo imports them through the same services.
 *
 * Layout, per /24 of the lab (the lab's hosts are consecutive addresses from its base):
 * - even /24s: an ISP (telecom) holds the whole /24, with customers inside it: a hospital's /26 (health), a
 *   city's /26 (government) and a university's /26 (education); the last /26 stays the ISP's own;
 * - odd /24s: an energy company's /26 and a bank's /26 (no ISP around them); the third /26 is announced by a
 *   hosting company known only by its AS number (ASN-only: the prefix table says who announces it); in the last
 *   /26 a retailer known only by its domain owns the servers whose certificate names it (domain-only), the rest
 *   is nobody's (the review queue).
 * Contacts are security@<organisation>.test (a reserved TLD: nothing is ever sent outside the machine).
 */
import { csvRecordsDocument } from '../core/csv.js';
import { formatIPv4, parseIPv4 } from '../core/ip.js';

/** The ASN-only organisation's AS (a documentation ASN, RFC 5398). */
export const DEMO_HOSTING_ASN = 64_512;
/** The domain-only organisation's domain: the lab's `mail-echo` certificate names mail.echo.example. */
export const DEMO_RETAIL_DOMAIN = 'echo.example';

export interface DemoOrganisation {
  readonly name: string;
  readonly sector: string;
  readonly networks: readonly string[];
  readonly asns: readonly number[];
  readonly domains: readonly string[];
  readonly contact: string;
}

export interface DemoConstituency {
  readonly organisations: readonly DemoOrganisation[];
  /** `PREFIX ASN` lines (the format `tocsin attribution prefixes import` reads). */
  readonly prefixes: readonly string[];
}

const HOSPITALS = ['St. Loopback Hospital', 'Localhost Clinic', 'Ring Road Infirmary', 'Harbour Health Centre'];
const CITIES = ['City of Loopback', 'Localhost County', 'Port Ringwood Council', 'Northvale Municipality'];
const UNIVERSITIES = ['Loopback University', 'Localhost College', 'Institute of Ringwood', 'Northvale Polytechnic'];
const ENERGY = ['Loopback Power', 'Localhost Grid', 'Ringwood Water & Gas', 'Northvale Energy'];
const BANKS = ['First Loopback Bank', 'Localhost Savings', 'Ringwood Mutual', 'Northvale Credit Union'];

/** A lower-case DNS label from an organisation name, for its contact address. */
export function slugOf(name: string): string {
  return name.toLowerCase().replace(/&/g, 'and').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'org';
}

function org(name: string, sector: string, networks: string[], extra: Partial<Pick<DemoOrganisation, 'asns' | 'domains'>> = {}): DemoOrganisation {
  return { name, sector, networks, asns: extra.asns ?? [], domains: extra.domains ?? [], contact: `security@${slugOf(name)}.test` };
}

/**
 * The constituency for a lab of `hosts` consecutive addresses from `base` (an IPv4 address). Only /24s the lab
 * touches are given owners; names cycle with a number once the lists run out (large labs).
 */
export function demoConstituency(base: string, hosts: number): DemoConstituency {
  const first = parseIPv4(base);
  if (first === null) throw new RangeError(`base must be an IPv4 address, got ${JSON.stringify(base)}`);
  const last = first + Math.max(1, hosts) - 1;
  const firstBlock = first >>> 8;
  const lastBlock = last >>> 8;
  const isp = org('Loopback Telecom', 'telecom', []);
  const ispNets: string[] = [];
  const hosting = org('Ringwood Hosting', 'hosting', [], { asns: [DEMO_HOSTING_ASN] });
  const retail = org('Echo Retail Group', 'retail', [], { domains: [DEMO_RETAIL_DOMAIN] });
  const out: DemoOrganisation[] = [];
  const prefixes: string[] = [];
  let even = 0;
  let odd = 0;
  const named = (list: readonly string[], i: number): string => `${list[i % list.length] ?? 'Organisation'}${i >= list.length ? ` ${Math.floor(i / list.length) + 1}` : ''}`;
  for (let b = firstBlock; b <= lastBlock; b++) {
    const net = (offset: number, bits: number): string => `${formatIPv4(((b << 8) >>> 0) + offset)}/${bits}`;
    if ((b - firstBlock) % 2 === 0) {
      ispNets.push(net(0, 24));
      out.push(org(named(HOSPITALS, even), 'health', [net(0, 26)]));
      out.push(org(named(CITIES, even), 'government', [net(64, 26)]));
      out.push(org(named(UNIVERSITIES, even), 'education', [net(128, 26)]));
      even++;
    } else {
      out.push(org(named(ENERGY, odd), 'energy', [net(0, 26)]));
      out.push(org(named(BANKS, odd), 'finance', [net(64, 26)]));
      prefixes.push(`${net(128, 26)} AS${DEMO_HOSTING_ASN}`);
      odd++;
    }
  }
  const all = [{ ...isp, networks: ispNets }, ...out, ...(odd > 0 ? [hosting, retail] : [])];
  return { organisations: all, prefixes };
}

/** The constituency as the CSV `tocsin constituency import` reads (list cells separated by spaces). */
export function demoConstituencyCsv(c: DemoConstituency): string {
  return csvRecordsDocument(['organisation', 'sector', 'country', 'networks', 'asns', 'domains', 'contact'], c.organisations.map((o) => ({
    organisation: o.name,
    sector: o.sector,
    country: 'ZZ',
    networks: o.networks.join(' '),
    asns: o.asns.map((a) => `AS${a}`).join(' '),
    domains: o.domains.join(' '),
    contact: o.contact,
  })));
}
