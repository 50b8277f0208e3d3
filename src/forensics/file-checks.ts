/**
 * Checks on files found in an install tree or an archive (not logs): web-shell locations by path,
 * content signatures (built-in and IoC), IoC file names, folder paths and hashes. Pure apart from
 * the bytes handed in; the caller streams the file and passes the leading bytes and the hashes.
 */
import { compileCondition, type Predicate } from './matcher.js';
import { FILE_RULES, SHIPPED_AUTH_FILES, type FieldName, type FileRule } from './rules.js';
import { matchSignature, type IocSet } from './iocs.js';
import { normPath } from './kinds.js';
import type { FindingRecord } from './types.js';

/** Leading bytes of a file read for content signatures (4 MiB). */
export const CONTENT_CAP = 4 * 1024 * 1024;

interface CompiledFileRule {
  readonly rule: FileRule;
  readonly path: RegExp;
  readonly test: Predicate;
}

const COMPILED: readonly CompiledFileRule[] = FILE_RULES.map((rule) => ({
  rule,
  path: new RegExp(rule.pathMatches, 'i'),
  test: compileCondition(rule.when),
}));

const SCRIPT = /\.(aspx|ashx|asmx|asp|cshtml|soap|rem|php|jsp)$/i;

/** What the caller must read for this file: content (for signatures) and/or hashes. */
export function fileNeeds(display: string, iocs: IocSet | null): { content: boolean; hash: boolean } {
  const p = normPath(display);
  const content =
    COMPILED.some((c) => c.rule.needsContent && c.path.test(p)) || (iocs !== null && iocs.contentSignatures.length > 0 && SCRIPT.test(p));
  return { content, hash: iocs !== null && iocs.hashes.size > 0 };
}

export interface FileFacts {
  readonly display: string;
  readonly mtime: string | null;
  readonly size: number;
  /** latin1 text of the first CONTENT_CAP bytes, or null if not read. */
  readonly content: string | null;
  /** Lower-case hex digests by algorithm, when hashes were computed. */
  readonly hashes: Readonly<Partial<Record<'md5' | 'sha1' | 'sha256', string>>> | null;
}

function excerptAround(content: string, re: RegExp): string {
  const m = re.exec(content);
  if (m === null) return '';
  const from = Math.max(0, m.index - 60);
  return content.slice(from, m.index + 140).replace(/\s+/g, ' ');
}

/** Runs every file check; returns the findings (at most one per check). */
export function checkFile(f: FileFacts, iocs: IocSet | null): FindingRecord[] {
  const p = normPath(f.display);
  const out: FindingRecord[] = [];
  const add = (check: string, cves: readonly string[], severity: FindingRecord['severity'], evidence: string): void => {
    out.push({ check, cve: cves.length === 0 ? null : cves.join(','), severity, file: f.display, line: null, time: f.mtime, clientIp: null, evidence });
  };
  const row = {
    get(field: FieldName): string | undefined {
      if (field === '$path') return p;
      if (field === '$content') return f.content ?? undefined;
      return undefined;
    },
  };
  for (const c of COMPILED) {
    if (!c.path.test(p)) continue;
    if (c.rule.needsContent && f.content === null) continue;
    if (!c.test(row)) continue;
    let evidence = `${f.display} (${f.size} bytes)`;
    if (c.rule.needsContent && f.content !== null) {
      const firstRe = firstRegex(c.rule.when);
      const ex = firstRe === null ? '' : excerptAround(f.content, firstRe);
      if (ex !== '') evidence += `: ${ex}`;
    } else if (/redirsuiteserverproxy\.aspx$/.test(p)) {
      evidence += ': look-alike of Microsoft\'s RedirSuiteServiceProxy.aspx';
    }
    add(c.rule.id, c.rule.cves, c.rule.severity, evidence);
  }
  if (iocs !== null) {
    const base = p.slice(p.lastIndexOf('/') + 1);
    if (iocs.fileNames.has(base) && !isShipped(p)) add('ioc-file-name', [], 'high', `${f.display}: file name on an IoC list`);
    if (SCRIPT.test(p) && !isShipped(p) && !out.some((r) => r.check.startsWith('webshell-file'))) {
      const dir = p.slice(0, p.lastIndexOf('/') + 1);
      const hit = iocs.paths.find((ip) => {
        const segs = ip.split('/');
        const tail = segs.slice(-2).join('/');
        return dir.includes(`/${tail}/`) || dir.startsWith(`${tail}/`);
      });
      if (hit !== undefined) add('ioc-path', [], 'high', `${f.display}: script under IoC folder ${hit}`);
    }
    if (f.hashes !== null) {
      for (const h of Object.values(f.hashes)) {
        const src = h === undefined ? undefined : iocs.hashes.get(h);
        if (src !== undefined) add('ioc-hash', [], 'critical', `${f.display}: hash ${h} listed in ${src}`);
      }
    }
    if (f.content !== null) {
      for (const sig of iocs.contentSignatures) {
        if (matchSignature(sig, f.content, f.size)) add('ioc-content', [], 'high', `${f.display}: matches IoC rule "${sig.name}"`);
      }
    }
  }
  return out;
}

function isShipped(p: string): boolean {
  const m = /(?:^|\/)(owa|ecp)\/auth\/([^/]+)$/.exec(p);
  if (m === null) return false;
  const list = SHIPPED_AUTH_FILES[m[1] as 'owa' | 'ecp'];
  return list.some((n) => n.toLowerCase() === m[2]);
}

function firstRegex(c: FileRule['when']): RegExp | null {
  if ('matches' in c && c.field === '$content') return new RegExp(c.matches, 'i');
  if ('all' in c) for (const x of c.all) { const r = firstRegex(x); if (r !== null) return r; }
  if ('any' in c) for (const x of c.any) { const r = firstRegex(x); if (r !== null) return r; }
  return null;
}
