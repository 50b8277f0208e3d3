/**
 * Generates the rule reference of docs/forensics.md from the rule table (rules.ts), between the
 * markers below. A test fails when the committed document differs from the table.
 *
 *   node --import tsx src/forensics/rules-doc.ts --write   # rewrite the section in docs/forensics.md
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describeCondition } from './matcher.js';
import { CAMPAIGNS, FILE_RULES, LOG_RULES, SHIPPED_AUTH_FILES, type RuleMeta } from './rules.js';
import { rulesRevision } from './version.js';

export const BEGIN = '<!-- rules:begin (generated from src/forensics/rules.ts; do not edit by hand) -->';
export const END = '<!-- rules:end -->';

function md(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function meta(r: RuleMeta): string[] {
  return [
    `- CVE: ${r.cves.length === 0 ? 'none (compromise indicator)' : r.cves.join(', ')}; severity: **${r.severity}**`,
    `- ${md(r.description)}`,
    `- Remediation: ${r.remediation}`,
    `- References: ${r.references.map((u) => `<${u}>`).join(', ')}`,
  ];
}

export function renderRules(): string {
  const L: string[] = [BEGIN, '', `Rules revision \`${rulesRevision()}\` (printed by every run; it changes with any rule, needle, severity or window).`, ''];
  L.push('### Log rules', '');
  L.push('| id | CVE | severity | runs on | title |', '|---|---|---|---|---|');
  for (const r of LOG_RULES) {
    L.push(`| \`${r.id}\` | ${r.cves.join(', ') || '-'} | ${r.severity} | ${r.on}${r.kinds === undefined ? '' : ` (${r.kinds.join(', ')})`} | ${md(r.title)} |`);
  }
  L.push('');
  for (const r of LOG_RULES) {
    L.push(`#### \`${r.id}\`: ${md(r.title)}`, '');
    L.push(...meta(r));
    L.push(`- Prefilter needles: ${r.needles.map((n) => `\`${n}\``).join(', ')}`);
    L.push(`- Condition: ${describeCondition(r.when)}`, '');
  }
  L.push('### File rules', '');
  L.push('| id | severity | title |', '|---|---|---|');
  for (const r of FILE_RULES) L.push(`| \`${r.id}\` | ${r.severity} | ${md(r.title)} |`);
  L.push('');
  for (const r of FILE_RULES) {
    L.push(`#### \`${r.id}\`: ${md(r.title)}`, '');
    L.push(...meta(r));
    L.push(`- Applies to paths matching \`/${r.pathMatches}/i\`${r.needsContent ? ' (reads the first 4 MiB)' : ''}`);
    L.push(`- Condition: ${describeCondition(r.when)}`, '');
  }
  L.push('Files Exchange ships in `FrontEnd\\HttpProxy\\owa\\auth`: ' + SHIPPED_AUTH_FILES.owa.map((n) => `\`${n}\``).join(', ') + '.');
  L.push('In `ecp\\auth`: ' + SHIPPED_AUTH_FILES.ecp.map((n) => `\`${n}\``).join(', ') + '.', '');
  L.push('### Periods at risk', '');
  L.push('A campaign is covered only when the HttpProxy and IIS logs have at least one dated record on every day of its window.', '');
  L.push('| campaign | CVEs | exploited since | window (every day needed) | note |', '|---|---|---|---|---|');
  for (const c of CAMPAIGNS) L.push(`| ${c.id} | ${c.cves.join(', ')} | ${c.exploitedSince} | ${c.window.from} .. ${c.window.to} | ${md(c.note)} |`);
  L.push('', END);
  return L.join('\n');
}

export const DOC_PATH = fileURLToPath(new URL('../../docs/forensics.md', import.meta.url));

/** Replaces the generated section of a document's text. */
export function withRules(doc: string): string {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a === -1 || b === -1 || b < a) throw new Error(`docs/forensics.md lacks the markers ${BEGIN} ... ${END}`);
  return doc.slice(0, a) + renderRules() + doc.slice(b + END.length);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1] && process.argv.includes('--write')) {
  writeFileSync(DOC_PATH, withRules(readFileSync(DOC_PATH, 'utf8')));
  process.stdout.write(`updated ${DOC_PATH}\n`);
}
