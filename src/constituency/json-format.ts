/**
 * JSON constituency files: an array of organisations, or an object whose `organisations` (or `organizations`)
 * member is that array. Each organisation is an object with the CSV format's fields (same names and aliases):
 * strings, or arrays of strings for the lists; `contacts` may also be objects {role, email, language, pgp}.
 * A bad element is reported with the line it starts on. Pure.
 */
import { RecordBuilder, type RowValues } from './builder.js';
import { headerField } from './csv-format.js';
import type { ContactRole, ImportProblem, ParseResult } from './types.js';
import { checkRole, splitList, splitNetworks } from './validate.js';

type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

export function parseConstituencyJson(file: string, text: string): ParseResult {
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const reject = (error: string): ParseResult => ({
    records: [], problems: [], rowsRead: new Map([[file, 0]]), skipped: new Map(), rejected: [{ file, line: 0, raw: '', error }],
  });
  let doc: JsonValue;
  try {
    doc = JSON.parse(src) as JsonValue;
  } catch (e) {
    return reject(`not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  let list: JsonValue[] | undefined;
  if (Array.isArray(doc)) list = doc;
  else if (doc !== null && typeof doc === 'object') {
    const inner = doc.organisations ?? doc.organizations;
    if (Array.isArray(inner)) list = inner;
  }
  if (list === undefined) return reject('expected an array of organisations or an object with an "organisations" array');
  const lines = elementLines(src);
  const rawLines = src.split(/\r?\n/);
  const b = new RecordBuilder();
  list.forEach((el, i) => {
    const line = lines[i] ?? 0;
    const ref = { file, line };
    const raw = JSON.stringify(el).slice(0, 2000);
    if (el === null || typeof el !== 'object' || Array.isArray(el)) {
      b.problem(ref, rawLines[line - 1] ?? raw, 'an organisation must be a JSON object: element set aside');
      return;
    }
    const fields = new Map<string, JsonValue>();
    for (const [k, v] of Object.entries(el)) {
      const f = headerField(k) ?? (k.toLowerCase() === 'contacts' ? 'contact' : undefined);
      if (f !== undefined && !fields.has(f)) fields.set(f, v);
    }
    const problems: string[] = [];
    const str = (f: string): string | undefined => {
      const v = fields.get(f);
      if (v === undefined || v === null) return undefined;
      if (typeof v === 'string') return v;
      if (typeof v === 'number') return String(v);
      problems.push(`"${f}" must be a string`);
      return undefined;
    };
    const list = (f: string, split: (s: string) => string[]): string[] => {
      const v = fields.get(f);
      if (v === undefined || v === null) return [];
      if (typeof v === 'string') return split(v);
      if (typeof v === 'number') return [String(v)];
      if (Array.isArray(v)) {
        const out: string[] = [];
        for (const x of v) {
          if (typeof x === 'string' || typeof x === 'number') out.push(String(x).trim());
          else problems.push(`"${f}" entries must be strings`);
        }
        return out.filter((x) => x !== '');
      }
      problems.push(`"${f}" must be a string or an array of strings`);
      return [];
    };
    const contacts: NonNullable<RowValues['contacts']>[number][] = [];
    const addContacts = (f: string, role: ContactRole): void => {
      const v = fields.get(f);
      const items = v === undefined || v === null ? [] : Array.isArray(v) ? v : [v];
      for (const c of items) {
        if (typeof c === 'string') for (const email of splitList(c)) contacts.push({ role, email });
        else if (c !== null && typeof c === 'object' && !Array.isArray(c) && typeof c.email === 'string') {
          let r = role;
          if (typeof c.role === 'string') {
            const checked = checkRole(c.role);
            if (checked.ok) r = checked.value;
            else {
              problems.push(checked.error);
              continue;
            }
          }
          const lang = c.language ?? c.lang;
          contacts.push({ role: r, email: c.email, ...(typeof lang === 'string' ? { language: lang } : {}), ...(typeof c.pgp === 'string' ? { pgp: c.pgp } : {}) });
        } else problems.push(`"${f}" entries must be e-mail addresses or {role, email, language, pgp} objects`);
      }
    };
    addContacts('contact', 'security');
    addContacts('abuse_contact', 'abuse');
    addContacts('technical_contact', 'technical');
    const networks = list('networks', splitNetworks);
    const asns = list('asns', splitList);
    for (const v of list('as_or_cidr', splitNetworks)) (/^(?:AS)?\d+$/i.test(v) ? asns : networks).push(v);
    const values: RowValues = { name: str('organisation') ?? '', networks, asns, domains: list('domains', splitList), contacts };
    const attrs: Partial<Record<'sector' | 'country' | 'size' | 'parent', string>> = {};
    for (const a of ['sector', 'country', 'size', 'parent'] as const) {
      const s = str(a);
      if (s !== undefined) attrs[a] = s;
    }
    for (const p of problems) b.problem(ref, raw, p);
    b.add(ref, raw, { ...values, ...attrs });
  });
  return { records: b.records(), problems: b.problems, rowsRead: new Map([[file, list.length]]), skipped: new Map(), rejected: [] as ImportProblem[] };
}

/**
 * The 1-based line on which each element of the organisations array starts (JSON.parse keeps no positions):
 * a scan over the text tracking strings and nesting; the array is the top level one, or the value of the
 * top-level object's "organisations"/"organizations" member.
 */
export function elementLines(src: string): number[] {
  const out: number[] = [];
  const stack: { kind: '[' | '{'; target: boolean; key: string | null }[] = [];
  let line = 1;
  let expectValue = false;
  let lastString: string | null = null;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\n') {
      line++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') continue;
    const top = stack[stack.length - 1];
    if (expectValue && top?.kind === '[' && top.target && c !== ']') out.push(line);
    expectValue = false;
    if (c === '"') {
      let j = i + 1;
      let s = '';
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\\') j++;
        else if (src[j] === '\n') line++;
        s += src[j] ?? '';
        j++;
      }
      lastString = s;
      i = j;
      continue;
    }
    if (c === ':' && top?.kind === '{') top.key = lastString;
    if (c === '[' || c === '{') {
      const target = c === '[' && (stack.length === 0 || (stack.length === 1 && top?.kind === '{' && /^organi[sz]ations$/.test(top.key ?? '')));
      stack.push({ kind: c, target, key: null });
      expectValue = c === '[';
    } else if (c === ']' || c === '}') stack.pop();
    else if (c === ',' && top?.kind === '[') expectValue = true;
  }
  return out;
}
