/**
 * Safe HTML by construction: `html\`...\`` escapes every interpolated value unless it is already SafeHtml (built by
 * this same tag). There is no other way to put text into a page, so a hostile banner, hostname or organisation name
 * is text, never markup. `trusted()` exists for constants written in this repository only (never for data).
 * Pure.
 */
const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\'': '&#39;', '`': '&#96;' };

export function escapeText(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ESCAPES[c] ?? c);
}

export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export type HtmlValue = SafeHtml | string | number | bigint | boolean | null | undefined | Date | readonly HtmlValue[];

function render(v: HtmlValue): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return (v as readonly HtmlValue[]).map(render).join('');
  if (v instanceof Date) return escapeText(v.toISOString());
  return escapeText(String(v));
}

export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return new SafeHtml(out);
}

/** A constant of this repository (never data from a host, a feed, a user or the database). */
export function trusted(constant: string): SafeHtml {
  return new SafeHtml(constant);
}

/** A URL for an href/src built from data: only same-site paths, every part encoded by the caller. */
export function path(template: TemplateStringsArray, ...parts: readonly (string | number)[]): string {
  let out = template[0] ?? '';
  for (let i = 0; i < parts.length; i++) out += encodeURIComponent(String(parts[i])) + (template[i + 1] ?? '');
  if (!out.startsWith('/') || out.startsWith('//')) throw new Error(`not a same-site path: ${out}`);
  return out;
}
