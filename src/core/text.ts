/**
 * One sanitiser for hostile text (response bodies and headers of scanned hosts, log lines, file names,
 * command-line values) before it reaches a terminal, a report or an error message. Pure.
 *
 * Unsafe characters, each of which can change what a reader sees rather than what the text says:
 *   - C0 controls U+0000-U+001F and DEL U+007F (ESC starts terminal sequences; CR overwrites a line);
 *   - C1 controls U+0080-U+009F (U+009B is a one-byte CSI to many terminals; latin1-decoded bodies produce them);
 *   - line and paragraph separators U+2028, U+2029 (some viewers break lines there);
 *   - bidi embeddings and overrides U+202A-U+202E, isolates U+2066-U+2069, marks U+200E, U+200F, U+061C
 *     ("Trojan Source": they reorder what a reader sees);
 *   - zero-width characters U+200B-U+200D and the BOM / zero-width no-break space U+FEFF (they hide text).
 */

 
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;
 
const UNSAFE_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

/** What replaces an unsafe character. */
export type UnsafeStyle =
  /** `replacement` (default '?'): short, for one-line displays and error messages. */
  | 'replace'
  /** A visible escape (`\n`, `\r`, `\t`, `\x1b`, `\u{202e}`): nothing is hidden, for forensic reports. */
  | 'escape'
  /** A JSON `\uXXXX` escape: for text that is already JSON (the value it denotes stays the same). */
  | 'json';

export interface SanitiseOptions {
  readonly style?: UnsafeStyle;
  /** With style 'replace': the replacement of each unsafe character (default '?'). */
  readonly replacement?: string;
  /**
   * Cap in UTF-16 code units of the input: longer text is cut to `max - 1` units and ends with '…'. A surrogate
   * pair is never cut in half. Default: no cap. With style 'escape' or 'json' the output may be longer than
   * `max` (escapes are longer than the characters they stand for), but an escape is never cut.
   */
  readonly max?: number;
  /** Keep LF as it is (multi-line reports); CR is still unsafe (it overwrites the line on a terminal). */
  readonly keepNewlines?: boolean;
}

/** Cuts `text` to at most `max` UTF-16 units, the last being '…' when anything was cut. */
export function capText(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 0) return '';
  let end = max - 1;
  // Do not leave a lone high surrogate (half an emoji) before the ellipsis.
  const last = text.charCodeAt(end - 1);
  if (end > 0 && last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

function escapeChar(c: string): string {
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  if (c === '\t') return '\\t';
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
}

function jsonEscape(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** `text` with every unsafe character replaced or escaped (see the module comment), capped at `opts.max`. */
export function sanitiseText(text: string, opts: SanitiseOptions = {}): string {
  const capped = opts.max === undefined ? text : capText(text, opts.max);
  const re = opts.keepNewlines === true ? UNSAFE_BUT_NEWLINE : UNSAFE;
  const style = opts.style ?? 'replace';
  if (style === 'escape') return capped.replace(re, escapeChar);
  if (style === 'json') return capped.replace(re, jsonEscape);
  return capped.replace(re, opts.replacement ?? '?');
}

