/**
 * JSON Lines for list exports: one JSON value per line, LF-terminated. JSON.stringify escapes every C0 control
 * (so a value can never end its line early) and lone surrogates; sanitiseText's json style also escapes the bidi,
 * zero-width and line-separator characters that JSON allows raw, so a terminal or editor shows the line as it is.
 * The value denoted stays exactly the same. Pure.
 */
import { sanitiseText } from '../core/text.js';

export function jsonlLine(value: unknown): string {
  return `${sanitiseText(JSON.stringify(value), { style: 'json' })}\n`;
}
