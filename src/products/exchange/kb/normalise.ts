/**
 * Pure helpers that turn source spellings into the in-repo table format: edition from a build number,
 * CU and SU from a release name, fix-row status from its provenance notes. Shared by the loader
 * (validation) and scripts/kb-refresh.ts (derivation), so both read names the same way.
 */
import type { BuildNumber } from '../../../core/build-number.js';

export const EDITIONS = [
  'Exchange Server 2007',
  'Exchange Server 2010',
  'Exchange Server 2013',
  'Exchange Server 2016',
  'Exchange Server 2019',
  'Exchange Server SE',
] as const;
export type Edition = (typeof EDITIONS)[number];

/**
 * End of (extended) support, Microsoft Lifecycle: after it Microsoft no longer assesses an edition for new
 * CVEs, so "not listed" stops meaning "not affected". SE has a rolling lifecycle (null). 2016 and 2019 kept
 * getting updates after 2025-10-14 (extended security updates); months with such an update still count.
 */
export const END_OF_SUPPORT: Readonly<Record<Edition, string | null>> = {
  'Exchange Server 2007': '2017-04-11',
  'Exchange Server 2010': '2020-10-13',
  'Exchange Server 2013': '2023-04-11',
  'Exchange Server 2016': '2025-10-14',
  'Exchange Server 2019': '2025-10-14',
  'Exchange Server SE': null,
};

/** First 15.2 build of Exchange Server Subscription Edition (SE RTM is 15.2.2562.17). */
export const SE_FIRST_BUILD = 2562;

/**
 * Edition by version rule: 8.x 2007, 14.x 2010, 15.0 2013, 15.1 2016, 15.2 2019 (SE from build 2562).
 * Returns null for anything else, including 15.20.x (Exchange Online front ends, not on-premises).
 */
export function editionByRule(b: BuildNumber): Edition | null {
  if (b.major === 8) return 'Exchange Server 2007';
  if (b.major === 14) return 'Exchange Server 2010';
  if (b.major !== 15) return null;
  if (b.minor === 0) return 'Exchange Server 2013';
  if (b.minor === 1) return 'Exchange Server 2016';
  if (b.minor === 2) return b.build >= SE_FIRST_BUILD ? 'Exchange Server SE' : 'Exchange Server 2019';
  return null;
}

export function isEdition(s: string): s is Edition {
  return (EDITIONS as readonly string[]).includes(s);
}

/** Exchange Online (Microsoft 365) front ends report 15.20.x: never an on-premises build. */
export function isExchangeOnline(b: BuildNumber): boolean {
  return b.major === 15 && b.minor === 20;
}

const SU_TOKEN = /^[A-Z][a-z]{2}\d{2}(?:SU|HU)(?:v\d+)?$/;

/**
 * CU and SU from a release name as the sources spell it, e.g.
 * "Exchange Server 2019 CU15 Aug26SU" → CU15 / Aug26SU; "Exchange Version 2016 CU9 + KB4340731" → CU9 / KB4340731;
 * "Exchange Server 2013 SP1 Mar21SU" → SP1 / Mar21SU; "Update Rollup 32 for Exchange Server 2010 SP3" → "SP3 RU32" / null;
 * "Update Rollup 8-v3 for Exchange Server 2007 SP3" → "SP3 RU8 v3" / null. Returns null when the name is not understood.
 */
export function parseReleaseName(edition: Edition, name: string): { cu: string; su: string | null } | null {
  const n = name.replace(/\s+/g, ' ').trim();
  if (edition === 'Exchange Server 2010' || edition === 'Exchange Server 2007') {
    const year = edition === 'Exchange Server 2010' ? '2010' : '2007';
    // "Update Rollup 8 v2 for Exchange Server 2010 SP3", "Update Rollup 6 Exchange Server 2010 SP2"
    let m = new RegExp(`^Update Rollup (\\d+)(?:[ -](v\\d+))?(?: for)? Exchange Server ${year}(?: (SP\\d))?(?: \\(recalled\\))?$`).exec(n);
    if (m !== null) return { cu: `${m[3] ?? 'RTM'} RU${m[1]}${m[2] === undefined ? '' : ` ${m[2]}`}`, su: null };
    // "Exchange Version 2010 SP3 RU16", "Exchange Version 2010 SP2 RU5 v1", "Exchange Server 2007 SP3 Update Rollup 23"
    m = new RegExp(`^Exchange (?:Server|Version) ${year}(?: (SP\\d|RTM))? (?:RU|Update Rollup )(\\d+)(?: (v\\d+))?$`).exec(n);
    if (m !== null) return { cu: `${m[1] ?? 'RTM'} RU${m[2]}${m[3] === undefined ? '' : ` ${m[3]}`}`, su: null };
    m = new RegExp(`^Exchange (?:Server|Version) ${year}(?: (SP\\d|RTM))?$`).exec(n);
    if (m !== null) return { cu: m[1] ?? 'RTM', su: null };
    return null;
  }
  const year = edition === 'Exchange Server SE' ? 'SE' : edition.slice(-4);
  const prefix = new RegExp(`^Exchange (?:Server|Version) ${year} `);
  if (!prefix.test(n)) return null;
  const tokens = n.replace(prefix, '').split(' ');
  // "Exchange Version 2019 + KB4503027": a hotfix on RTM, which the name leaves implicit.
  if (tokens[0] === '+') tokens.unshift('RTM');
  const cu = tokens.shift();
  if (cu === undefined || !/^(?:CU\d+|RTM|SP1|Preview)$/.test(cu)) return null;
  let su: string | null = null;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] ?? '';
    if (/^\((?:CU\d+|\d{4}H\d)\)$/.test(t)) continue; // "(CU4)" after SP1, "(2025H1)" after a CU: labels, not updates
    if (t === '+' && /^KB\d+(?:v\d+)?$/.test(tokens[i + 1] ?? '') && su === null) {
      su = tokens[i + 1] ?? null;
      i++;
      continue;
    }
    if (SU_TOKEN.test(t) && su === null) {
      su = t;
      continue;
    }
    return null;
  }
  return { cu, su };
}

/** How far a fix row can be trusted (see data/exchange/PROVENANCE.md). */
export type FixStatus = 'confirmed' | 'uncertain' | 'derived' | 'no-build-fix';
export const FIX_STATUSES: readonly FixStatus[] = ['confirmed', 'uncertain', 'derived', 'no-build-fix'];

/**
 * Status of a fix row from the provenance notes of the shared table: "derived rule" rows restate the
 * later-CU rule; "NO BUILD FIX" rows name a CU that is fixed only by configuration; UNCERTAIN and CHECK
 * rows (and rows without a build) are not authoritative.
 */
export function fixStatusFromNotes(notes: string, fixedBuild: string): FixStatus {
  if (/derived rule/i.test(notes)) return 'derived';
  if (/NO BUILD FIX/.test(notes)) return 'no-build-fix';
  if (/UNCERTAIN|\bCHECK\b/.test(notes) || fixedBuild.trim() === '') return 'uncertain';
  return 'confirmed';
}
