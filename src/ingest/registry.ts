/**
 * The feed formats, listed explicitly (like src/products/registry.ts): adding one is a file in this folder and
 * a line here. Auto-detection tries them in this order (the most specific first: an nmap report is
 * recognised by its root element, masscan by its line shape, zmap and Shadowserver by their header names).
 */
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { masscan } from './masscan.js';
import { nmapXml } from './nmap-xml.js';
import { shadowserver } from './shadowserver.js';
import type { FeedFormat, FeedFormatId } from './types.js';
import { zmap } from './zmap.js';

export const FEED_FORMATS: readonly FeedFormat[] = [nmapXml, masscan, zmap, shadowserver];

export const FEED_FORMAT_IDS: readonly FeedFormatId[] = FEED_FORMATS.map((f) => f.id);

/** `--format` value → the format, or null for auto. Throws TOCSIN_ARG_INVALID for an unknown name. */
export function formatByName(name: string): FeedFormat | null {
  if (name === 'auto') return null;
  const f = FEED_FORMATS.find((x) => x.id === name);
  if (f === undefined) {
    throw new TocsinError('TOCSIN_ARG_INVALID', `--format must be auto, ${FEED_FORMAT_IDS.join(', ')}; got ${JSON.stringify(sanitiseText(name, { max: 30 }))}`);
  }
  return f;
}

/** The format the first bytes and the name show. Throws TOCSIN_FEED_FORMAT_UNKNOWN when none matches. */
export function detectFormat(head: string, baseName: string, file: string): FeedFormat {
  const text = head.charCodeAt(0) === 0xfeff ? head.slice(1) : head;
  const f = FEED_FORMATS.find((x) => x.detect(text, baseName));
  if (f === undefined) {
    throw new TocsinError('TOCSIN_FEED_FORMAT_UNKNOWN', `${file}: not a recognised feed format (${FEED_FORMAT_IDS.join(', ')})`);
  }
  return f;
}
