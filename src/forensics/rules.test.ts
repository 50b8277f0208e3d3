import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { CAMPAIGNS, FILE_RULES, LOG_RULES, SHIPPED_AUTH_FILES } from './rules.js';
import { KIT_VERSION, kitBanner, rulesRevision } from './version.js';
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

test('campaign windows are ISO dates in order, after exploitation began', () => {
  for (const c of CAMPAIGNS) {
    assert.match(c.window.from, /^\d{4}-\d{2}-\d{2}$/);
    assert.match(c.window.to, /^\d{4}-\d{2}-\d{2}$/);
    assert.ok(c.exploitedSince <= c.window.from && c.window.from <= c.window.to, c.id);
  }
  assert.deepEqual(CAMPAIGNS.find((c) => c.id === 'ProxyLogon')?.window, { from: '2021-02-28', to: '2021-03-31' });
});

test('the kit version is the package version; the rules revision is a hash of the rule table', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.equal(KIT_VERSION, pkg.version);
  assert.match(rulesRevision(), /^[0-9a-f]{12}$/);
  const text = JSON.stringify({ LOG_RULES, FILE_RULES, SHIPPED_AUTH_FILES, CAMPAIGNS });
  assert.equal(rulesRevision(), createHash('sha256').update(text).digest('hex').slice(0, 12));
  // Any change to a rule changes the revision.
  const changed = JSON.stringify({ LOG_RULES: LOG_RULES.map((r, i) => (i === 0 ? { ...r, severity: 'low' } : r)), FILE_RULES, SHIPPED_AUTH_FILES, CAMPAIGNS });
  assert.notEqual(createHash('sha256').update(changed).digest('hex').slice(0, 12), rulesRevision());
  assert.equal(kitBanner(), `tocsin-forensics ${KIT_VERSION}, rules ${rulesRevision()}`);
});

test('docs/forensics.md carries the current rule reference (regenerate: node --import tsx src/forensics/rules-doc.ts --write)', () => {
  const doc = readFileSync(DOC_PATH, 'utf8');
  const section = (d: string): string => d.slice(d.indexOf(BEGIN), d.indexOf(END) + END.length);
  // Compare only the generated section, so a failure shows a readable diff.
  assert.equal(section(doc), section(withRules(doc)));
  for (const r of ALL) assert.ok(renderRules().includes(`\`${r.id}\``), r.id);
});
