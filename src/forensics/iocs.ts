/**
 * Indicator-of-compromise lists loaded from files (`--iocs FILE...`). Two formats:
 *  - plain lists, one indicator a line (`#` comments), e.g. the SCS-Labs HAFNIUM lists: each line is
 *    classified by its own shape as IP, hash (MD5/SHA-1/SHA-256), path, file name or user agent; the
 *    file's own name (never its folders) is a hint (`ip`, `useragent`, `hash`, `name`, `path`) used only
 *    for lines whose shape is ambiguous (a user agent that looks like a file name, a bare folder name).
 *    Lines that fit no type are counted and reported, never silently dropped;
 *  - CISA CHIRP YAML (e.g. AA21-062A): `ips:` blocks, and YARA rules whose string literals are
 *    matched in log lines (rules aimed at `*.log` files) or in file contents (rules aimed at `\**`).
 * Parsing is pure (text in, IocSet out); reading the files is the caller's job.
 */
import { isIP } from 'node:net';

export interface ContentSignature {
  readonly name: string;
  /** Alternatives; each is a list of groups that must all hold; a group is any/all of its strings. */
  readonly alternatives: readonly (readonly SigGroup[])[];
}

export interface SigGroup {
  readonly mode: 'any' | 'all';
  readonly strings: readonly SigString[];
  /** For `$x at 0`: the string must start the file. */
  readonly atZero?: boolean;
  /** For `filesize < N`: the file must be smaller. */
  readonly maxSize?: number;
}

export type SigString = { readonly literal: string } | { readonly regex: RegExp };

export interface LogStringSet {
  readonly name: string;
  readonly strings: readonly SigString[];
}

export interface IocSet {
  readonly ips: ReadonlySet<string>;
  /** Normalised: `+` as space, lower case. */
  readonly userAgents: readonly string[];
  /** Lower case. */
  readonly fileNames: ReadonlySet<string>;
  /** Folder paths, `/` separators, lower case, install-root prefixes removed. */
  readonly paths: readonly string[];
  /** Lower-case hex → where it came from. */
  readonly hashes: ReadonlyMap<string, string>;
  readonly logStrings: readonly LogStringSet[];
  readonly contentSignatures: readonly ContentSignature[];
  /** Problems found while reading (unparseable lines, skipped rule types). */
  readonly warnings: readonly string[];
  /** One line per file read: what was understood (`hafnium-ips.txt: 15 IP address(es)`). */
  readonly understood: readonly string[];
}

interface MutableIocs {
  ips: Set<string>;
  userAgents: string[];
  fileNames: Set<string>;
  paths: string[];
  hashes: Map<string, string>;
  logStrings: LogStringSet[];
  contentSignatures: ContentSignature[];
  warnings: string[];
  understood: string[];
}

export function emptyIocs(): IocSet {
  return { ips: new Set(), userAgents: [], fileNames: new Set(), paths: [], hashes: new Map(), logStrings: [], contentSignatures: [], warnings: [], understood: [] };
}

export function iocCount(s: IocSet): number {
  return s.ips.size + s.userAgents.length + s.fileNames.size + s.paths.length + s.hashes.size + s.logStrings.length + s.contentSignatures.length;
}

/** Normalises a user agent as IIS (`+` for space) and HttpProxy (space) both log it. */
export function normUserAgent(ua: string): string {
  return ua.replace(/\+/g, ' ').trim().toLowerCase();
}

/** Normalises an IoC folder path: drops drive letters, %VARS%, <placeholders>, comments and install roots. */
export function normIocPath(p: string): string {
  let s = p.replace(/\([^)]*\)/g, ' ').trim();
  s = s.replace(/\\/g, '/').replace(/%[^%]+%/g, '').replace(/<[^>]*>/g, '').replace(/^[a-z]:/i, '');
  s = s.toLowerCase().replace(/\/+/g, '/').replace(/^\/|\/$/g, '').trim();
  // Install roots differ between servers; keep the part that is the same everywhere.
  const roots = ['exchange server/v15/', 'exchange server/', 'exchange/', 'v15/'];
  for (const r of roots) {
    const i = s.lastIndexOf(r);
    if (i !== -1) {
      s = s.slice(i + r.length);
      break;
    }
  }
  return s.replace(/^inetpub\//, 'inetpub/');
}

type IocKind = 'ip' | 'ua' | 'hash' | 'name' | 'path';
type ListHint = IocKind | null;

/** The file's own name: a list under a folder called "hashes" or "ip-lists" is not thereby a hash list. */
export function baseName(fileName: string): string {
  return fileName.slice(Math.max(fileName.lastIndexOf('/'), fileName.lastIndexOf('\\')) + 1);
}

function hintFromName(fileName: string): ListHint {
  const n = baseName(fileName).toLowerCase();
  if (/user.?agent/.test(n)) return 'ua';
  if (/hash|sha\d|sha(?:[^a-z]|$)|md5/.test(n)) return 'hash';
  if (/ip.?addr|(^|[^a-z])ips?([^a-z]|$)/.test(n)) return 'ip';
  if (/path|folder|director/.test(n)) return 'path';
  if (/name/.test(n)) return 'name';
  return null;
}

const HASH_RE = /^(?:[a-f0-9]{32}|[a-f0-9]{40}|[a-f0-9]{64})$/i;
/** Extensions a file-name indicator has (web shells, tools, dumps); a domain name is not a file name. */
const FILE_EXT_RE =
  /^[^\s\\/]+\.(?:aspx|ashx|asmx|asp|axd|cshtml|config|php|jsp|jspx|js|vbs|hta|ps1|psm1|bat|cmd|dll|exe|sys|msi|lnk|jar|py|sh|zip|7z|rar|gz|tar|cab|dmp|dat|bin|tmp|txt|log|xml|html?|pst|ost|edb|evtx|rem|soap)$/i;

/** The type a line has by its own shape, or null when it fits none. */
function shapeOf(line: string): IocKind | null {
  if (isIP(line) !== 0) return 'ip';
  if (HASH_RE.test(line)) return 'hash';
  if (/[\\/]$/.test(line) || /^[a-z]:\\/i.test(line) || /^%[^%]+%\\/.test(line) || line.startsWith('\\') || /^[^\s/]*\\[^\s/]*$/.test(line)) return 'path';
  if (FILE_EXT_RE.test(line)) return 'name';
  // "Product/version ..." (Mozilla/5.0, python-requests/2.25.1, antSword/v2.1).
  if (/^[a-z][\w.!-]*\/[\w.]/i.test(line)) return 'ua';
  return null;
}

/** Shape first (an IP is an IP, a hash a hash); the file-name hint settles only ambiguous lines. */
function classify(line: string, hint: ListHint): IocKind | null {
  const shape = shapeOf(line);
  if (shape === 'ip' || shape === 'hash') return shape;
  if (hint === 'ua') return 'ua';
  if (hint === 'name' && shape !== 'path' && /^[^\s\\/]+$/.test(line)) return 'name';
  if (hint === 'path' && shape !== 'name' && !/\s/.test(line)) return 'path';
  return shape;
}

const KIND_LABEL: Readonly<Record<IocKind, string>> = {
  ip: 'IP address(es)',
  hash: 'hash(es)',
  path: 'folder path(s)',
  name: 'file name(s)',
  ua: 'user agent(s)',
};

/** How many example lines that fit no type are quoted per file (the rest are counted). */
const MAX_UNKNOWN_QUOTED = 5;

function addTo(acc: MutableIocs, kind: IocKind, value: string, source: string): boolean {
  switch (kind) {
    case 'ip':
      if (isIP(value) === 0) {
        acc.warnings.push(`${source}: not an IP address: ${value.slice(0, 80)}`);
        return false;
      }
      acc.ips.add(value.toLowerCase());
      return true;
    case 'hash':
      if (!HASH_RE.test(value)) {
        acc.warnings.push(`${source}: not an MD5/SHA-1/SHA-256 hash: ${value.slice(0, 80)}`);
        return false;
      }
      acc.hashes.set(value.toLowerCase(), source);
      return true;
    case 'name':
      acc.fileNames.add(value.replace(/\\_/g, '_').toLowerCase());
      return true;
    case 'path': {
      const p = normIocPath(value);
      if (p === '') return false;
      acc.paths.push(p);
      return true;
    }
    default:
      acc.userAgents.push(normUserAgent(value));
      return true;
  }
}

/** Parses a plain indicator list, line by line, and records what was understood. */
function parsePlainList(text: string, fileName: string, acc: MutableIocs): void {
  const hint = hintFromName(fileName);
  const counts: Record<IocKind, number> = { ip: 0, hash: 0, path: 0, name: 0, ua: 0 };
  let unknown = 0;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\uFEFF/, '').trim();
    if (line === '' || line.startsWith('#') || line.startsWith('//')) continue;
    const value = line.replace(/\\_/g, '_');
    const kind = classify(value, hint);
    if (kind !== null && addTo(acc, kind, value, fileName)) {
      counts[kind]++;
      continue;
    }
    if (kind === null) {
      unknown++;
      if (unknown <= MAX_UNKNOWN_QUOTED) {
        acc.warnings.push(
          `${fileName}: fits no indicator type (IP, hash, path, file name, user agent): ${value.slice(0, 80)}` +
            (hint === 'ip' ? ' (not an IP address)' : hint === 'hash' ? ' (not an MD5/SHA-1/SHA-256 hash)' : ''),
        );
      }
    } else unknown++;
  }
  if (unknown > MAX_UNKNOWN_QUOTED) acc.warnings.push(`${fileName}: ${unknown - MAX_UNKNOWN_QUOTED} more line(s) fit no indicator type`);
  const parts = (Object.keys(counts) as IocKind[]).filter((k) => counts[k] > 0).map((k) => `${counts[k]} ${KIND_LABEL[k]}`);
  acc.understood.push(
    `${fileName}: ${parts.length === 0 ? 'no indicator' : parts.join(', ')}` +
      (unknown > 0 ? `; ${unknown} line(s) fit no type and were skipped` : '') +
      (hint !== null && parts.length > 0 && counts[hint] === 0 ? ` (the file name suggests ${KIND_LABEL[hint]}; lines were read by their shape)` : ''),
  );
}

function unescapeYara(s: string): string {
  return s.replace(/\\(["\\ntr])/g, (_m, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c === 'r' ? '\r' : c));
}

/** Reads `$name = "literal"` and `$name = /regex/` definitions of a YARA rule. */
function yaraStrings(rule: string): Map<string, SigString> {
  const out = new Map<string, SigString>();
  const re = /\$(\w*)\s*=\s*(?:"((?:[^"\\\r\n]|\\.)*)"|\/((?:[^/\\\r\n]|\\.)+)\/([a-z]*))/g;
  for (let m = re.exec(rule); m !== null; m = re.exec(rule)) {
    const name = m[1] ?? '';
    if (m[2] !== undefined) out.set(name, { literal: unescapeYara(m[2]) });
    else if (m[3] !== undefined) {
      try {
        out.set(name, { regex: new RegExp(m[3], (m[4] ?? '').includes('i') ? 'i' : '') });
      } catch {
        /* an unparseable regex is skipped; the caller records a warning via the count */
      }
    }
  }
  return out;
}

function parseSize(s: string): number {
  const m = /^(\d+)\s*(KB|MB)?$/i.exec(s.trim());
  if (m === null) return Number.POSITIVE_INFINITY;
  const n = Number(m[1]);
  const unit = (m[2] ?? '').toUpperCase();
  return unit === 'KB' ? n * 1024 : unit === 'MB' ? n * 1024 * 1024 : n;
}

/** A small YARA condition reader: `any of ($p*)`, `all of them`, `$x`, `$x at 0`, `filesize < N`, joined by and/or. */
function yaraCondition(cond: string, strings: Map<string, SigString>): (readonly SigGroup[])[] | null {
  const pick = (pattern: string): SigString[] => {
    if (pattern === 'them') return [...strings.values()];
    const p = pattern.replace(/^\(|\)$/g, '').trim();
    return p
      .split(',')
      .map((x) => x.trim().replace(/^\$/, ''))
      .flatMap((x) => (x.endsWith('*') ? [...strings].filter(([k]) => k.startsWith(x.slice(0, -1))).map(([, v]) => v) : strings.has(x) ? [strings.get(x)!] : []));
  };
  const alternatives: (readonly SigGroup[])[] = [];
  for (const clause of cond.replace(/\s+/g, ' ').trim().split(/ or /i)) {
    const groups: SigGroup[] = [];
    for (const term of clause.split(/ and /i)) {
      const t = term.trim();
      let m: RegExpExecArray | null;
      if ((m = /^(any|all) of (them|\([^)]*\))$/i.exec(t)) !== null) {
        const ss = pick(m[2]!);
        if (ss.length === 0) return null;
        groups.push({ mode: m[1]!.toLowerCase() === 'all' ? 'all' : 'any', strings: ss });
      } else if ((m = /^\$(\w*) at 0$/i.exec(t)) !== null) {
        const s = strings.get(m[1]!);
        if (s === undefined) return null;
        groups.push({ mode: 'all', strings: [s], atZero: true });
      } else if ((m = /^\$(\w*)$/.exec(t)) !== null) {
        const s = strings.get(m[1]!);
        if (s === undefined) return null;
        groups.push({ mode: 'all', strings: [s] });
      } else if ((m = /^filesize\s*<\s*(.+)$/i.exec(t)) !== null) {
        groups.push({ mode: 'all', strings: [], maxSize: parseSize(m[1]!) });
      } else {
        return null;
      }
    }
    alternatives.push(groups);
  }
  return alternatives;
}

/** Parses CISA CHIRP indicator YAML (the subset CHIRP uses: documents of name/ioc_type/indicator). */
function parseChirp(text: string, fileName: string, acc: MutableIocs): void {
  const docs = text.split(/^---\s*$/m);
  for (const doc of docs) {
    const name = /^name:\s*"?(.*?)"?\s*$/m.exec(doc)?.[1] ?? '(unnamed)';
    const type = /^ioc_type:\s*"?(\w+)"?/m.exec(doc)?.[1] ?? '';
    if (type === '') continue;
    const ipsBlock = /^\s*ips:\s*\|\s*\r?\n((?:[ \t]+\S.*(?:\r?\n|$))+)/m.exec(doc);
    if (ipsBlock !== null) {
      for (const l of ipsBlock[1]!.split(/\r?\n/)) {
        const v = l.trim();
        if (v !== '') addTo(acc, 'ip', v, `${fileName}: ${name}`);
      }
      continue;
    }
    if (type === 'yara') {
      const files = /^\s*files:\s*"(.*)"\s*$/m.exec(doc)?.[1] ?? '';
      const ruleStart = doc.search(/^\s*rule:\s*\|/m);
      if (ruleStart === -1) continue;
      const rule = doc.slice(ruleStart);
      const strings = yaraStrings(rule);
      const cond = /condition:\s*([\s\S]*?)\s*}\s*$/m.exec(rule)?.[1] ?? '';
      if (strings.size === 0) {
        acc.warnings.push(`${fileName}: ${name}: no strings read; skipped`);
        continue;
      }
      if (/user.?agent/i.test(name) && [...strings.values()].every((x) => 'literal' in x)) {
        // A list of user agents (CISA says they are not evidence alone): matched against the
        // UserAgent column, reported as info.
        for (const x of strings.values()) if ('literal' in x) addTo(acc, 'ua', x.literal, `${fileName}: ${name}`);
      } else if (/\.log"?$/i.test(files.trim())) {
        acc.logStrings.push({ name, strings: [...strings.values()] });
      } else {
        const alternatives = yaraCondition(cond, strings);
        if (alternatives === null) acc.warnings.push(`${fileName}: ${name}: condition not understood; skipped`);
        else acc.contentSignatures.push({ name, alternatives });
      }
      continue;
    }
    // `events` rules (Windows event queries) are covered by the built-in rules for CVE-2021-26855/26857.
    acc.warnings.push(`${fileName}: ${name}: ioc_type ${type} is covered by built-in rules; skipped`);
  }
}

/** Parses one IoC file's text; `fileName` is used for format detection, hints and messages. */
export function parseIocFile(text: string, fileName: string, into?: IocSet): IocSet {
  const base = into ?? emptyIocs();
  const acc: MutableIocs = {
    ips: new Set(base.ips),
    userAgents: [...base.userAgents],
    fileNames: new Set(base.fileNames),
    paths: [...base.paths],
    hashes: new Map(base.hashes),
    logStrings: [...base.logStrings],
    contentSignatures: [...base.contentSignatures],
    warnings: [...base.warnings],
    understood: [...base.understood],
  };
  const isYaml = /\.ya?ml$/i.test(baseName(fileName)) || /^\s*ioc_type:/m.test(text);
  if (isYaml) {
    const before = { ips: acc.ips.size, ua: acc.userAgents.length, ls: acc.logStrings.length, cs: acc.contentSignatures.length };
    parseChirp(text, fileName, acc);
    const parts = [
      [acc.ips.size - before.ips, 'IP address(es)'],
      [acc.userAgents.length - before.ua, 'user agent(s)'],
      [acc.logStrings.length - before.ls, 'log-string rule(s)'],
      [acc.contentSignatures.length - before.cs, 'content signature(s)'],
    ].filter(([n]) => (n as number) > 0).map(([n, l]) => `${n} ${l}`);
    acc.understood.push(`${fileName}: ${parts.length === 0 ? 'no indicator' : parts.join(', ')} (CHIRP YAML)`);
  } else parsePlainList(text, fileName, acc);
  acc.userAgents = [...new Set(acc.userAgents)].filter((u) => u !== '');
  acc.paths = [...new Set(acc.paths)];
  return acc;
}

/** True when `content` (latin1 text of a file of `size` bytes) satisfies the signature. */
export function matchSignature(sig: ContentSignature, content: string, size: number): boolean {
  const has = (s: SigString, atZero: boolean): boolean =>
    'literal' in s ? (atZero ? content.startsWith(s.literal) : content.includes(s.literal)) : s.regex.test(content);
  return sig.alternatives.some((groups) =>
    groups.every((g) => {
      if (g.maxSize !== undefined) return size < g.maxSize;
      const at = g.atZero === true;
      return g.mode === 'all' ? g.strings.every((s) => has(s, at)) : g.strings.some((s) => has(s, at));
    }),
  );
}

export function sigStringText(s: SigString): string {
  return 'literal' in s ? s.literal : `/${s.regex.source}/`;
}
