/**
 * Renders docs/errors.md from the error registry (scripts/gen-errors-doc.ts writes it; a test fails when the
 * committed file differs). Pure.
 */
import { ERROR_CODES, type ErrorCode } from './errors.js';

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

export function renderErrorCatalogue(): string {
  const codes = Object.keys(ERROR_CODES) as ErrorCode[];
  const lines = [
    '# Error codes',
    '',
    '<!-- Generated from src/core/errors.ts by `npx tsx scripts/gen-errors-doc.ts`; do not edit by hand. -->',
    '',
    'Every error tocsin reports carries one of these codes, printed as `tocsin: CODE: message`, then the details',
    'and what to do next. **kind** says whose move it is: `user` (a mistake the user can fix) or `internal` (a bug,',
    'or a failure of the environment such as a lost database or a full disk). **exit** is the process exit status',
    '(sysexits.h where one fits). **HTTP** is the status an API response carrying the error gets: 400 user input,',
    '404 not found, 409 busy, 503 storage, 500 internal.',
    '',
    'Besides these: 0 success; 3 from `tocsin scan` when attempts went unanswered; 130 after Ctrl+C or SIGTERM;',
    '141 when standard output was closed (a reader such as `head` went away).',
    '',
    'The forensics kit (`tocsin forensics`, and the standalone `tocsin-forensics.cjs`) keeps its own documented exit',
    'codes (0 none found, 1 indicators found, 2 error, 3 insufficient logs): its errors exit 2 through both entry',
    'points, a bug in it included (`TOCSIN_FORENSICS_INTERNAL`), rather than 70.',
    '',
    '| code | kind | exit | HTTP | when | what to do |',
    '|---|---|---|---|---|---|',
  ];
  for (const code of codes) {
    const e = ERROR_CODES[code];
    lines.push(`| \`${code}\` | ${e.kind} | ${e.exit} | ${e.http} | ${cell(e.means)} | ${cell(e.hint)} |`);
  }
  return `${lines.join('\n')}\n`;
}
