/**
 * Compiles rule conditions (rules.ts) into predicates over a row. Pure: no I/O.
 * Regular expressions are compiled once, case-insensitive; values longer than MAX_VALUE are cut
 * before a regex runs, so a hostile multi-megabyte field cannot make a lazy pattern quadratic.
 */
import type { Condition, FieldName } from './rules.js';

/** Read access to one unit of input (a request row, a line, an event record, a file). */
export interface Row {
  get(field: FieldName): string | undefined;
}

export type Predicate = (row: Row) => boolean;

/** Longest value a regex is run on (64 KiB). */
export const MAX_VALUE = 64 * 1024;

/** PowerShell `-like`: `*` any run, `?` one character, anchored, case-insensitive. */
export function likeToRegExp(pattern: string): RegExp {
  let src = '';
  for (const ch of pattern) {
    if (ch === '*') src += '[\\s\\S]*';
    else if (ch === '?') src += '[\\s\\S]';
    else src += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${src}$`, 'i');
}

function cut(v: string): string {
  return v.length > MAX_VALUE ? v.slice(0, MAX_VALUE) : v;
}

export function compileCondition(c: Condition): Predicate {
  if ('all' in c) {
    const parts = c.all.map(compileCondition);
    return (row) => parts.every((p) => p(row));
  }
  if ('any' in c) {
    const parts = c.any.map(compileCondition);
    return (row) => parts.some((p) => p(row));
  }
  if ('not' in c) {
    const inner = compileCondition(c.not);
    return (row) => !inner(row);
  }
  const field = c.field;
  if ('like' in c) {
    const re = likeToRegExp(c.like);
    return (row) => {
      const v = row.get(field);
      return v !== undefined && re.test(cut(v));
    };
  }
  if ('matches' in c) {
    const re = new RegExp(c.matches, 'i');
    return (row) => {
      const v = row.get(field);
      return v !== undefined && re.test(cut(v));
    };
  }
  const want = c.equals.toLowerCase();
  return (row) => {
    const v = row.get(field);
    return v !== undefined && v.trim().toLowerCase() === want;
  };
}

/** Every field a condition reads (used by the docs and by tests). */
export function fieldsOf(c: Condition): readonly FieldName[] {
  if ('all' in c) return [...new Set(c.all.flatMap(fieldsOf))];
  if ('any' in c) return [...new Set(c.any.flatMap(fieldsOf))];
  if ('not' in c) return fieldsOf(c.not);
  return [c.field];
}

/** A one-line human rendering of a condition, for docs/forensics.md. */
export function describeCondition(c: Condition): string {
  if ('all' in c) return c.all.map(describeCondition).join(' AND ');
  if ('any' in c) return `(${c.any.map(describeCondition).join(' OR ')})`;
  if ('not' in c) return `NOT ${describeCondition(c.not)}`;
  if ('like' in c) return `${c.field} like \`${c.like}\``;
  if ('matches' in c) return `${c.field} =~ \`/${c.matches}/i\``;
  return `${c.field} = \`${c.equals}\``;
}
