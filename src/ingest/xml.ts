/**
 * A small streaming XML tokenizer for feed files (nmap -oX), written for hostile input rather than taken from
 * a dependency: no DTD processing and no entity expansion beyond the five predefined entities and character
 * references (a DOCTYPE with an internal subset is refused: that is where entity bombs and external entities
 * live; nmap writes a bare `<!DOCTYPE nmaprun>`, which is accepted and ignored), no namespaces, no
 * validation. Memory stays bounded: one token may be at most MAX_TOKEN characters. Pure.
 *
 * Events carry the line their token starts on and the token's source text (capped), which the nmap reader
 * keeps as the row's raw text.
 */
import { TocsinError } from '../core/errors.js';
import type { InputLine } from './types.js';

export const MAX_TOKEN = 1 << 20;
const RAW_CAP = 2048;

export type XmlEvent =
  | { readonly type: 'open'; readonly name: string; readonly attrs: ReadonlyMap<string, string>; readonly selfClosing: boolean; readonly line: number; readonly raw: string }
  | { readonly type: 'close'; readonly name: string; readonly line: number }
  | { readonly type: 'text'; readonly text: string; readonly line: number };

const ENTITY = /&(?:(lt|gt|amp|quot|apos)|#(\d{1,7})|#x([0-9a-fA-F]{1,6}));/g;
const NAMED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
const ATTR = /([A-Za-z_:][-\w:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
const NAME = /^[A-Za-z_:][-\w:.]*/;

/** The five predefined entities and character references; anything else is left as written. */
export function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(ENTITY, (whole, named: string | undefined, dec: string | undefined, hex: string | undefined) => {
    if (named !== undefined) return NAMED[named] ?? whole;
    const code = dec !== undefined ? Number.parseInt(dec, 10) : Number.parseInt(hex ?? '', 16);
    return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : '\ufffd';
  });
}

function reject(file: string, line: number, why: string): never {
  throw new TocsinError('TOCSIN_FEED_REJECTED', `${file}: line ${line}: ${why}`);
}

function countNewlines(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = s.indexOf('\n', from); i >= 0 && i < to; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

/** End of a start or end tag (index of its '>'), skipping quoted attribute values; -1 when not complete yet. */
function tagEnd(buf: string, from: number): number {
  let quote = 0;
  for (let i = from; i < buf.length; i++) {
    const c = buf.charCodeAt(i);
    if (quote !== 0) {
      if (c === quote) quote = 0;
    } else if (c === 34 || c === 39) quote = c;
    else if (c === 62) return i;
  }
  return -1;
}

export async function* xmlEvents(lines: AsyncIterable<InputLine>, file: string): AsyncGenerator<XmlEvent> {
  let buf = '';
  let line = 1; // line of buf[0]
  let first = true;
  const advance = (to: number): void => {
    line += countNewlines(buf, 0, to);
    buf = buf.slice(to);
  };
  const drain = function* (final: boolean): Generator<XmlEvent> {
    for (;;) {
      const lt = buf.indexOf('<');
      if (lt < 0) {
        if (final || buf.length > MAX_TOKEN) {
          if (buf.trim() !== '') yield { type: 'text', text: decodeEntities(buf), line };
          advance(buf.length);
        }
        return;
      }
      if (lt > 0) {
        const text = buf.slice(0, lt);
        if (text.trim() !== '') yield { type: 'text', text: decodeEntities(text), line };
        advance(lt);
      }
      let end: number;
      if (buf.startsWith('<!--')) {
        const e = buf.indexOf('-->', 4);
        end = e < 0 ? -1 : e + 3;
      } else if (buf.startsWith('<![CDATA[')) {
        const e = buf.indexOf(']]>', 9);
        if (e >= 0) yield { type: 'text', text: buf.slice(9, e), line };
        end = e < 0 ? -1 : e + 3;
      } else if (buf.startsWith('<?')) {
        const e = buf.indexOf('?>', 2);
        end = e < 0 ? -1 : e + 2;
      } else if (buf.startsWith('<!')) {
        if (buf.length < 9 && !final) return;
        if (!/^<!DOCTYPE\s/i.test(buf)) reject(file, line, 'unsupported markup declaration (only a plain DOCTYPE is accepted)');
        const e = tagEnd(buf, 2);
        if (e >= 0 && buf.slice(0, e).includes('[')) reject(file, line, 'a DOCTYPE with an internal subset (entity declarations) is refused');
        end = e < 0 ? -1 : e + 1;
      } else {
        const e = tagEnd(buf, 1);
        if (e >= 0) {
          const body = buf.slice(1, e);
          if (body.startsWith('/')) {
            const name = NAME.exec(body.slice(1).trim())?.[0];
            if (name === undefined) reject(file, line, 'malformed end tag');
            yield { type: 'close', name, line };
          } else {
            const name = NAME.exec(body)?.[0];
            if (name === undefined) reject(file, line, 'malformed tag');
            const selfClosing = body.trimEnd().endsWith('/');
            const attrs = new Map<string, string>();
            for (const m of body.slice(name.length).matchAll(ATTR)) attrs.set(m[1] ?? '', decodeEntities(m[2] ?? m[3] ?? ''));
            yield { type: 'open', name, attrs, selfClosing, line, raw: buf.slice(0, Math.min(e + 1, RAW_CAP)) };
            if (selfClosing) yield { type: 'close', name, line };
          }
        }
        end = e < 0 ? -1 : e + 1;
      }
      if (end < 0) {
        if (buf.length > MAX_TOKEN) reject(file, line, `a token longer than ${MAX_TOKEN} characters`);
        if (final) reject(file, line, 'the file ends inside a tag');
        return;
      }
      advance(end);
    }
  };
  for await (const l of lines) {
    buf += first ? l.text : `\n${l.text}`;
    first = false;
    yield* drain(false);
  }
  yield* drain(true);
}
