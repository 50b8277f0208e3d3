/**
 * Adapters from upstream source formats to source build rows (the exchange-builds.csv layout), for
 * scripts/kb-refresh.ts. Pure: text in, rows out; the script does the file I/O. Upstream text is treated
 * as untrusted: sizes are capped, anything that does not parse is skipped and counted.
 */
import { formatBuild, tryParseBuildNumber } from '../../../core/build-number.js';
import { editionByRule } from './normalise.js';
import type { SourceBuild } from './refresh.js';

export interface Adapted {
  readonly rows: readonly SourceBuild[];
  /** Entries that looked like builds but could not be read (build, date or edition). */
  readonly skipped: readonly string[];
}

const MAX_SOURCE_BYTES = 20 * 1024 * 1024;
const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];

/**
 * "March 8, 2007" → 2007-03-08; "December, 2015" → "2015-12 (month only)"; ISO dates pass through.
 * Returns null for anything else (including righel's "April, 2096" for Exchange 4.0, which we never keep).
 */
export function parseSourceDate(text: string): string | null {
  const t = text.replace(/\s+/g, ' ').trim();
  const iso = /^(\d{4})-(\d{2})-(\d{2})/.exec(t);
  if (iso !== null) return `${iso[1]}-${iso[2]}-${iso[3]}`;
  const m = /^([A-Za-z]+)\s*(\d{1,2})?,?\s*(\d{4})$/.exec(t);
  if (m === null) return null;
  const month = MONTHS.indexOf((m[1] ?? '').toLowerCase());
  const year = Number(m[3]);
  // Exchange exists from 1996; righel's dictionary prints 1996 as 2096, so far-future years are typos.
  if (month < 0 || year < 1996 || year > 2060) return null;
  const mm = String(month + 1).padStart(2, '0');
  if (m[2] === undefined) return `${year}-${mm} (month only)`;
  const day = Number(m[2]);
  if (day < 1 || day > 31) return null;
  return `${year}-${mm}-${String(day).padStart(2, '0')}`;
}

/** Exchange 2007 and later on-premises builds only (8.x, 14.x, 15.0–15.2). */
function toRow(name: string, date: string, build: string, repo: string, path: string, skipped: string[]): SourceBuild | null {
  const b = tryParseBuildNumber(build);
  if (b === null || b.revision === null) {
    if (/\d+\.\d+\.\d+/.test(build)) skipped.push(`${build}: not a 4-part build`);
    return null;
  }
  const edition = editionByRule(b);
  if (edition === null) return null; // Exchange 2003 and older, Exchange Online: out of scope, not an error
  const d = parseSourceDate(date);
  if (d === null) {
    skipped.push(`${formatBuild(b)}: release date ${JSON.stringify(date.slice(0, 40))} not understood`);
    return null;
  }
  return { product: edition, name: name.replace(/\s+/g, ' ').trim(), release_date: d, build: formatBuild(b), source_repo: repo, source_path: path };
}

/**
 * righel/ms-exchange-version-nse `ms-exchange-unique-versions-dict.json`:
 * { "8.3.517.0": { "name": "...", "release_date": "March 21, 2017", "build": "8.3.517.0", "urls": [] }, ... }
 */
export function fromRighelVersions(jsonText: string, sourcePath: string): Adapted {
  if (jsonText.length > MAX_SOURCE_BYTES) throw new Error(`righel dictionary larger than ${MAX_SOURCE_BYTES} bytes`);
  const parsed: unknown = JSON.parse(jsonText);
  const rows: SourceBuild[] = [];
  const skipped: string[] = [];
  if (typeof parsed !== 'object' || parsed === null) return { rows, skipped: ['not a JSON object'] };
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== 'object' || value === null) continue;
    const v = value as Record<string, unknown>;
    const name = typeof v.name === 'string' ? v.name : '';
    const date = typeof v.release_date === 'string' ? v.release_date : '';
    const build = typeof v.build === 'string' ? v.build : key;
    const row = toRow(name, date, build, 'righel/ms-exchange-version-nse', sourcePath, skipped);
    if (row !== null) rows.push(row);
  }
  return { rows, skipped };
}

const ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', '#39': "'" };

function cellText(html: string): string {
  return html
    .replace(/<br\s*\/?>/gi, ' ')
    .replace(/<[^>]*>/g, '')
    .replace(/&(#?\w+);/g, (all, e: string) => ENTITIES[e] ?? all)
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * The Microsoft Learn page "Exchange Server build numbers and release dates", saved as HTML: every table
 * row with a product name, a release date and a short-form build. Column order is found per table from
 * its header row (Product name, Release date, Build number (short format)), falling back to that order.
 */
export function fromLearnHtml(html: string, sourcePath: string): Adapted {
  if (html.length > MAX_SOURCE_BYTES) throw new Error(`Learn page larger than ${MAX_SOURCE_BYTES} bytes`);
  const rows: SourceBuild[] = [];
  const skipped: string[] = [];
  for (const table of html.match(/<table[\s\S]*?<\/table>/gi) ?? []) {
    let cols = { name: 0, date: 1, build: 2 };
    for (const tr of table.match(/<tr[\s\S]*?<\/tr>/gi) ?? []) {
      const header = (tr.match(/<th[\s\S]*?<\/th>/gi) ?? []).map(cellText);
      if (header.length > 0) {
        const find = (re: RegExp, dflt: number): number => {
          const i = header.findIndex((h) => re.test(h));
          return i < 0 ? dflt : i;
        };
        cols = { name: find(/product|name/i, 0), date: find(/date/i, 1), build: find(/short/i, 2) };
        continue;
      }
      const cells = (tr.match(/<td[\s\S]*?<\/td>/gi) ?? []).map(cellText);
      if (cells.length < 3) continue;
      const row = toRow(cells[cols.name] ?? '', cells[cols.date] ?? '', cells[cols.build] ?? '', 'learn.microsoft.com', sourcePath, skipped);
      if (row !== null) rows.push(row);
    }
  }
  return { rows, skipped };
}

/**
 * Merges source rows in priority order (earlier sources win for the same build). Returns the rows and,
 * separately, real conflicts (same build, different release date) for the refresh summary.
 */
export function mergeSources(sources: readonly (readonly SourceBuild[])[]): { rows: SourceBuild[]; conflicts: string[] } {
  const byBuild = new Map<string, SourceBuild>();
  const conflicts: string[] = [];
  for (const list of sources) {
    for (const r of list) {
      const key = tryParseBuildNumber(r.build);
      const k = key === null ? r.build : formatBuild(key);
      const prior = byBuild.get(k);
      if (prior === undefined) byBuild.set(k, r);
      else if (prior.source_repo !== r.source_repo && prior.release_date.slice(0, 10) !== r.release_date.slice(0, 10) && !r.release_date.includes('month only') && !prior.release_date.includes('month only')) {
        conflicts.push(`${k}: ${prior.source_repo} says ${prior.release_date}, ${r.source_repo} says ${r.release_date}; kept the first`);
      }
    }
  }
  return { rows: [...byBuild.values()], conflicts };
}
