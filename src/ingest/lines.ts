/**
 * Bytes → lines, streaming and pure: LF or CRLF line ends (a lone CR inside a line is kept, the CSV reader
 * decides), a UTF-8 BOM at the very start dropped, invalid UTF-8 replaced by U+FFFD (hostile input must not
 * stop an import). Memory stays bounded by MAX_LINE: a longer line is cut there and marked, and the
 * parser quarantines it.
 */
import type { InputLine } from './types.js';

/** Longest line kept whole, in UTF-16 units (a Shadowserver row is a few hundred bytes). */
export const MAX_LINE = 1 << 20;

export interface Line extends InputLine {
  /** The line was longer than MAX_LINE: `text` is its start. */
  readonly cut?: true;
}

export async function* splitLines(chunks: AsyncIterable<Buffer | string>, maxLine = MAX_LINE): AsyncGenerator<Line> {
  const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: false });
  let no = 0;
  let pending = '';
  let cut = false;
  const emit = (text: string): Line => {
    no++;
    const t = text.endsWith('\r') ? text.slice(0, -1) : text;
    const line: Line = cut ? { no, text: t, cut: true } : { no, text: t };
    cut = false;
    return line;
  };
  const take = function* (text: string): Generator<Line> {
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      const part = text.slice(start, nl);
      if (cut) {
        yield emit(pending);
      } else yield emit(pending + part);
      pending = '';
      start = nl + 1;
    }
    if (!cut) {
      pending += text.slice(start);
      if (pending.length > maxLine) {
        pending = pending.slice(0, maxLine);
        cut = true;
      }
    }
  };
  for await (const chunk of chunks) {
    const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    yield* take(text);
  }
  yield* take(decoder.decode());
  if (pending !== '' || cut) yield emit(pending);
}
