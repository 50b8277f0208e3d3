import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CAMPAIGNS, FILE_RULES, LOG_RULES } from './rules.js';
import { compileCondition, fieldsOf } from './matcher.js';
import { BEGIN, DOC_PATH, END, renderRules, withRules } from './rules-doc.js';
import { SEVERITY_ORDER } from './types.js';

const ALL = [...LOG_RULES, ...FILE_RULES];

test('rule ids are unique kebab-case and every rule has complete metadata', () => {
  const ids = ALL.map((r) => r.id);
  assert.equal(new Set(ids).size, ids.length);
  for (const r of ALL) {
    assert.match(r.id, /^[a-z0-9]+(-[a-z0-9]+)*$/, r.id);
    for (const c of r.cves) assert.match(c, /^CVE-\d{4}-\d{4,}$/, `${r.id}: ${c}`);
    assert.ok(SEVERITY_ORDER.includes(r.severity), r.id);
    assert.ok(r.title.length > 10 && r.description.length > 20 && r.remediation.length > 10, r.id);
    assert.ok(r.references.length > 0 && r.references.every((u) => u.startsWith('https://')), r.id);
  }
});

test('every needle and condition compiles; log rules read only fields a log row has', () => {
  for (const r of LOG_RULES) {
    assert.ok(r.needles.length > 0, r.id);
    for (const n of r.needles) assert.doesNotThrow(() => new RegExp(n, 'i'), `${r.id}: ${n}`);
    assert.doesNotThrow(() => compileCondition(r.when), r.id);
    for (const f of fieldsOf(r.when)) assert.ok(f !== '$path' && f !== '$content', `${r.id} reads ${f}`);
    if (r.on === 'event') assert.deepEqual(fieldsOf(r.when), ['$record'], r.id);
  }
  for (const r of FILE_RULES) {
    assert.doesNotThrow(() => new RegExp(r.pathMatches, 'i'), r.id);
    assert.equal(r.needsContent, fieldsOf(r.when).includes('$content'), r.id);
  }
});

test('campaign dates are ISO dates and ProxyLogon needs logs from 2021-03-03', () => {
  for (const c of CAMPAIGNS) {
    assert.match(c.needLogsFrom, /^\d{4}-\d{2}-\d{2}$/);
    assert.ok(c.exploitedSince <= c.needLogsFrom, c.id);
  }
  assert.equal(CAMPAIGNS.find((c) => c.id === 'ProxyLogon')?.needLogsFrom, '2021-03-03');
});

test('docs/forensics.md carries the current rule reference (regenerate: node --import tsx src/forensics/rules-doc.ts --write)', () => {
  const doc = readFileSync(DOC_PATH, 'utf8');
  const section = (d: string): string => d.slice(d.indexOf(BEGIN), d.indexOf(END) + END.length);
  // Compare only the generated section, so a failure shows a readable diff.
  assert.equal(section(doc), section(withRules(doc)));
  for (const r of ALL) assert.ok(renderRules().includes(`\`${r.id}\``), r.id);
});
