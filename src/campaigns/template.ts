/**
 * A small, safe template engine for warning messages. Pure.
 *
 * Syntax: `{{name}}` and `{{a.b}}` insert a value; `{{#each list}}...{{/each}}` repeats for each item (names
 * resolve on the item first, then outwards; `{{.}}` is the item itself); `{{#if name}}...{{else}}...{{/if}}`
 * (true, a non-empty string or list, a non-zero number). No expressions, no helpers, no raw output: a template
 * cannot run code, and no value can bypass escaping.
 *
 * Every value is escaped for the context the template is rendered in (the values come from scanned hosts, feeds
 * and registries, so they are hostile):
 * - `html`: unsafe characters (src/core/text.ts) dropped, then & < > " ' as entities: a `<script>` in an
 *   organisation name or a banner is shown, not run;
 * - `text`: unsafe characters (controls, CR, LF, bidi overrides, zero-width) dropped: a value cannot start a new
 *   line, fake a header block or reorder what the reader sees;
 * - `header`: as text, and the rendered header must be one line: CR or LF anywhere in it is refused
 *   (the template itself is the only place that could put one there).
 * A name the data does not have is an error (TOCSIN_TEMPLATE_INVALID), not an empty string: a typo in a
 * template must not send a message with a hole in it.
 */
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';

export type EscapeMode = 'html' | 'text' | 'header';

/** A value the engine can insert or iterate. */
export type TemplateValue = string | number | boolean | null | readonly TemplateValue[] | { readonly [key: string]: TemplateValue };

type Node =
  | { readonly t: 'text'; readonly text: string }
  | { readonly t: 'var'; readonly path: string }
  | { readonly t: 'each'; readonly path: string; readonly body: readonly Node[] }
  | { readonly t: 'if'; readonly path: string; readonly then: readonly Node[]; readonly else: readonly Node[] };

export interface CompiledTemplate {
  readonly name: string;
  readonly nodes: readonly Node[];
}

const TAG = /\{\{\s*([#/]?)\s*([A-Za-z.][A-Za-z0-9_.]*)?\s*([A-Za-z.][A-Za-z0-9_.]*)?\s*\}\}/g;
const STANDALONE = /^[ \t]*(\{\{\s*(?:[#/][^}]*|else\s*)\}\})[ \t]*\r?\n/gm;
const PATH = /^(\.|[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*)$/;

function invalid(name: string, why: string): TocsinError {
  return new TocsinError('TOCSIN_TEMPLATE_INVALID', `template ${name}: ${why}`);
}

/** Parses a template; throws TOCSIN_TEMPLATE_INVALID on unbalanced blocks or a malformed tag. */
export function compileTemplate(name: string, raw: string): CompiledTemplate {
  // A block tag alone on its line takes the line with it (as in mustache), so text templates keep their layout.
  const source = raw.replace(STANDALONE, '$1');
  const root: Node[] = [];
  const stack: Array<{ kind: 'each' | 'if'; path: string; body: Node[]; else: Node[] | null }> = [];
  const out = (): Node[] => {
    const top = stack[stack.length - 1];
    if (top === undefined) return root;
    return top.else ?? top.body;
  };
  const text = (t: string): void => {
    if (/\{\{|\}\}/.test(t)) throw invalid(name, `a {{ or }} that is not a tag near ${JSON.stringify(t.slice(0, 40))}`);
    out().push({ t: 'text', text: t });
  };
  let last = 0;
  for (const m of source.matchAll(TAG)) {
    const at = m.index;
    if (at > last) text(source.slice(last, at));
    last = at + m[0].length;
    const sigil = m[1] ?? '';
    const word = m[2] ?? '';
    const arg = m[3];
    if (sigil === '#') {
      if ((word !== 'each' && word !== 'if') || arg === undefined || !PATH.test(arg)) throw invalid(name, `bad block tag ${m[0]}`);
      stack.push({ kind: word, path: arg, body: [], else: null });
    } else if (sigil === '/') {
      const top = stack.pop();
      if (top === undefined || top.kind !== word || arg !== undefined) throw invalid(name, `${m[0]} closes nothing open`);
      out().push(top.kind === 'each'
        ? { t: 'each', path: top.path, body: top.body }
        : { t: 'if', path: top.path, then: top.body, else: top.else ?? [] });
    } else if (word === 'else' && arg === undefined) {
      const top = stack[stack.length - 1];
      if (top === undefined || top.kind !== 'if' || top.else !== null) throw invalid(name, '{{else}} outside an {{#if}}');
      top.else = [];
    } else {
      if (arg !== undefined || !PATH.test(word)) throw invalid(name, `bad tag ${m[0]}`);
      out().push({ t: 'var', path: word });
    }
  }
  if (last < source.length) text(source.slice(last));
  if (stack.length > 0) throw invalid(name, `{{#${stack[stack.length - 1]!.kind}}} is not closed`);
  return { name, nodes: root };
}

function lookup(scopes: readonly TemplateValue[], path: string): { found: boolean; value: TemplateValue } {
  if (path === '.') return { found: true, value: scopes[scopes.length - 1] ?? null };
  const parts = path.split('.');
  for (let i = scopes.length - 1; i >= 0; i--) {
    let v: TemplateValue | undefined = scopes[i];
    let ok = true;
    for (const p of parts) {
      if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.prototype.hasOwnProperty.call(v, p)) {
        v = (v as { readonly [key: string]: TemplateValue })[p];
      } else {
        ok = false;
        break;
      }
    }
    if (ok && v !== undefined) return { found: true, value: v };
  }
  return { found: false, value: null };
}

function truthy(v: TemplateValue): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'string') return v !== '';
  if (typeof v === 'number') return v !== 0;
  return v === true || (v !== null && typeof v === 'object');
}

const HTML_ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: string): string {
  return sanitiseText(s, { replacement: '' }).replace(/[&<>"']/g, (c) => HTML_ENTITIES[c]!);
}

/** One value for text or a header: no control characters, no line breaks, no bidi tricks. */
export function escapeText(s: string): string {
  return sanitiseText(s, { replacement: '' });
}

function scalar(name: string, path: string, v: TemplateValue, mode: EscapeMode): string {
  if (v !== null && typeof v === 'object') throw invalid(name, `{{${path}}} is a list or record, not a value`);
  const s = v === null ? '' : String(v);
  return mode === 'html' ? escapeHtml(s) : escapeText(s);
}

function renderNodes(tpl: string, nodes: readonly Node[], scopes: TemplateValue[], mode: EscapeMode, out: string[]): void {
  for (const n of nodes) {
    if (n.t === 'text') out.push(n.text);
    else if (n.t === 'var') {
      const { found, value } = lookup(scopes, n.path);
      if (!found) throw invalid(tpl, `{{${n.path}}}: no such value`);
      out.push(scalar(tpl, n.path, value, mode));
    } else if (n.t === 'each') {
      const { found, value } = lookup(scopes, n.path);
      if (!found) throw invalid(tpl, `{{#each ${n.path}}}: no such list`);
      if (!Array.isArray(value)) throw invalid(tpl, `{{#each ${n.path}}}: not a list`);
      for (const item of value as readonly TemplateValue[]) {
        scopes.push(item);
        renderNodes(tpl, n.body, scopes, mode, out);
        scopes.pop();
      }
    } else {
      const { found, value } = lookup(scopes, n.path);
      if (!found) throw invalid(tpl, `{{#if ${n.path}}}: no such value`);
      renderNodes(tpl, truthy(value) ? n.then : n.else, scopes, mode, out);
    }
  }
}

/** Renders with every value escaped for `mode`; a `header` result is one line, trimmed, or an error. */
export function renderTemplate(tpl: CompiledTemplate, data: { readonly [key: string]: TemplateValue }, mode: EscapeMode): string {
  const out: string[] = [];
  renderNodes(tpl.name, tpl.nodes, [data], mode, out);
  const s = out.join('');
  if (mode !== 'header') return s;
  const line = s.replace(/\n+$/, '').trim();
  if (/[\r\n]/.test(line)) throw invalid(tpl.name, 'a header template must render to one line');
  return line;
}
