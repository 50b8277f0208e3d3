/**
 * Compiles the rule table and the loaded IoCs for one file kind: the prefilter regex (union of the
 * needles of every rule and IoC that can fire on that kind) and the predicates. Built once per kind
 * and reused for every file of that kind.
 */
import { compileCondition, type Predicate } from './matcher.js';
import { LOG_RULES, type LogRule } from './rules.js';
import type { IocSet } from './iocs.js';
import type { FileKind } from './types.js';

export interface CompiledRule {
  readonly rule: LogRule;
  readonly test: Predicate;
}

export interface RuleSet {
  readonly kind: FileKind;
  /** Global, case-insensitive: finds candidate lines. Also matches `#Fields:` header lines. */
  readonly prefilter: RegExp;
  readonly request: readonly CompiledRule[];
  readonly line: readonly CompiledRule[];
  readonly event: readonly CompiledRule[];
  readonly iocs: IocSet | null;
}

const compiled = new Map<LogRule, Predicate>();
function predicateOf(r: LogRule): Predicate {
  let p = compiled.get(r);
  if (p === undefined) {
    p = compileCondition(r.when);
    compiled.set(r, p);
  }
  return p;
}

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function applies(r: LogRule, kind: FileKind): boolean {
  if (r.kinds !== undefined) return r.kinds.includes(kind);
  if (r.on === 'event') return kind === 'event-export';
  return true;
}

/** Needles contributed by loaded IoCs (literal strings, escaped). */
export function iocNeedles(iocs: IocSet | null): string[] {
  if (iocs === null) return [];
  const out: string[] = [];
  for (const ip of iocs.ips) out.push(escapeRegExp(ip));
  for (const ua of iocs.userAgents) {
    out.push(escapeRegExp(ua));
    if (ua.includes(' ')) out.push(escapeRegExp(ua.replace(/ /g, '+')));
  }
  for (const n of iocs.fileNames) out.push(escapeRegExp(n));
  for (const ls of iocs.logStrings) {
    for (const s of ls.strings) out.push('literal' in s ? escapeRegExp(s.literal) : s.regex.source);
  }
  return out;
}

export function buildRuleSet(kind: FileKind, iocs: IocSet | null, rules: readonly LogRule[] = LOG_RULES): RuleSet {
  const chosen = rules.filter((r) => applies(r, kind));
  const needles = new Set<string>(['^#fields:']);
  for (const r of chosen) for (const n of r.needles) needles.add(n);
  for (const n of iocNeedles(iocs)) needles.add(n);
  const pick = (on: LogRule['on']): CompiledRule[] =>
    chosen.filter((r) => r.on === on).map((rule) => ({ rule, test: predicateOf(rule) }));
  return {
    kind,
    prefilter: new RegExp([...needles].join('|'), 'gim'),
    request: pick('request'),
    line: pick('line'),
    event: pick('event'),
    iocs,
  };
}
