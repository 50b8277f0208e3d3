/**
 * The pure incident rules (src/incidents): stage 0/1/final validation (coded errors naming every bad field;
 * hostile text kept exactly), the triage state machine (allowed and refused transitions, what a decision needs),
 * and the SLA clocks per category (due times, overdue and late flags at a given `now`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TocsinError } from '../src/core/errors.js';
import {
  CATEGORIES, INCIDENT_STATUSES, SLA_TARGETS, allowedTransitions, applyTriage, canTransition, dueTimes, slaClocks, validateFinal, validateStage0, validateStage1,
  type IncidentStatus,
} from '../src/incidents/index.js';

const NOW = new Date('2026-03-02T10:00:00Z');
const HOSTILE = '<script>alert(1)</script>"\'&=cmd|"/c calc"!A1 \u202e';

function stage0(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    reporter: { name: 'Ana Admin', role: 'IT lead', phone: '+49 30 1234567', email: 'ana@uncompromised.example' },
    org: 'Customer GmbH', summary: 'Web shell in owa/auth', types: ['web-shell', 'exploited-service'], cves: ['cve-2021-26855', 'CVE-2021-26855'],
    detectedAt: '2026-03-02T09:30+01:00', timeZone: 'Europe/Berlin', ongoing: true, impact: { integrity: true }, helpRequested: 'call us', tlp: 'amber+strict',
    ...over,
  };
}

function invalid(fn: () => unknown, ...fields: string[]): TocsinError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof TocsinError, `expected a TocsinError, got ${String(caught)}`);
  assert.equal(caught.code, 'TOCSIN_INCIDENT_INVALID');
  for (const f of fields) assert.ok(caught.details.some((d) => d.startsWith(`${f}:`)), `a problem names ${f}: ${caught.details.join(' | ')}`);
  return caught;
}

test('stage 0: a good report is normalised (CVEs upper-cased and de-duplicated, time to UTC, TLP upper case)', () => {
  const s = validateStage0(stage0(), NOW);
  assert.deepEqual(s.cves, ['CVE-2021-26855']);
  assert.equal(s.detectedAt, '2026-03-02T08:30:00.000Z');
  assert.equal(s.tlp, 'AMBER+STRICT');
  assert.deepEqual(s.types, ['web-shell', 'exploited-service']);
  assert.deepEqual(s.impact, { confidentiality: false, integrity: true, availability: false, personalData: false });
  assert.equal(s.org, 'Customer GmbH');
  assert.equal(s.timeZone, 'Europe/Berlin');
});

test('stage 0: hostile text is kept exactly (escaping is the display\'s job)', () => {
  const s = validateStage0(stage0({ summary: `${HOSTILE}\nsecond line`, org: HOSTILE.slice(0, 100), reporter: { name: HOSTILE, role: 'x', phone: '12345', email: 'a@b.example' } }), NOW);
  assert.equal(s.summary, `${HOSTILE}\nsecond line`);
  assert.equal(s.reporter.name, HOSTILE);
});

test('stage 0: every bad field is named with the one code', () => {
  const e = invalid(() => validateStage0({
    reporter: { name: '', role: 'r', phone: 'call me', email: 'not-an-address' }, summary: 'x', types: ['bogus'], cves: ['CVE-21-1'],
    detectedAt: '2026-03-02 09:30', ongoing: 'yes', tlp: 'PURPLE', extra: 1, timeZone: 'Mars/Olympus',
  }, NOW), 'reporter.name', 'reporter.phone', 'reporter.email', 'types[0]', 'cves[0]', 'detectedAt', 'ongoing', 'tlp', 'extra', 'timeZone');
  assert.match(e.message, /^stage 0 report: /);
  invalid(() => validateStage0(stage0({ types: [] }), NOW), 'types');
  invalid(() => validateStage0(stage0({ detectedAt: '2026-03-02T09:30' }), NOW), 'detectedAt');
  invalid(() => validateStage0(stage0({ detectedAt: '2026-03-05T09:30Z' }), NOW), 'detectedAt');
  invalid(() => validateStage0(stage0({ summary: 'nul \u0000 byte' }), NOW), 'summary');
  invalid(() => validateStage0(stage0({ reporter: undefined }), NOW), 'reporter');
  invalid(() => validateStage0(stage0({ summary: 'x'.repeat(20_001) }), NOW), 'summary');
  invalid(() => validateStage0([], NOW));
  invalid(() => validateStage0(stage0({ orgId: -3 }), NOW), 'orgId');
});

test('stage 1 and final: validated, coded', () => {
  const s1 = validateStage1({ assets: ['mail01', ' ', 'mail02'], indicators: ['203.0.113.9'], actionsTaken: 'isolated', othersInformed: ['police'] });
  assert.deepEqual(s1.assets, ['mail01', 'mail02']);
  invalid(() => validateStage1({}), 'assets');
  invalid(() => validateStage1({ assets: 'mail01' }), 'assets');
  invalid(() => validateStage1({ indicators: [1] }), 'indicators[0]');
  const f = validateFinal({ rootCause: 'unpatched', resolution: 'rebuilt' });
  assert.equal(f.dataExfiltrated, 'unknown');
  invalid(() => validateFinal({ rootCause: 'x', dataExfiltrated: 'maybe' }), 'resolution', 'dataExfiltrated');
});

test('triage: the state machine allows the forward path and corrections, refuses shortcuts', () => {
  assert.deepEqual(allowedTransitions('received'), ['triage']);
  assert.ok(canTransition('triage', 'incident'));
  assert.ok(canTransition('incident', 'resolved'));
  assert.ok(canTransition('resolved', 'triage'), 'a resolved report may be reopened');
  // resolved is reachable only from a decision
  for (const from of INCIDENT_STATUSES) assert.equal(canTransition(from, 'resolved'), ['incident', 'duplicate', 'rejected'].includes(from), `${from} -> resolved`);
  const refused = (from: IncidentStatus, to: IncidentStatus): void => {
    assert.throws(() => applyTriage({ id: 1, status: from, category: 'C3' }, { status: to }), (e: unknown) => e instanceof TocsinError && e.code === 'TOCSIN_INCIDENT_STATE' && e.message.includes('allowed:'));
  };
  refused('received', 'resolved');
  refused('received', 'incident');
  refused('triage', 'resolved');
  refused('resolved', 'incident');
});

test('triage: what each decision needs, and what it stamps', () => {
  assert.throws(() => applyTriage({ id: 1, status: 'triage', category: null }, { status: 'incident' }), /category: an incident needs a category/);
  assert.throws(() => applyTriage({ id: 1, status: 'triage', category: null }, { status: 'duplicate' }), /duplicateOf: a duplicate needs/);
  assert.throws(() => applyTriage({ id: 1, status: 'triage', category: null }, { status: 'duplicate', duplicateOf: 1 }), /cannot duplicate itself/);
  assert.throws(() => applyTriage({ id: 1, status: 'triage', category: null }, { status: 'rejected', duplicateOf: 2 }), /only with status duplicate/);
  assert.throws(() => applyTriage({ id: 1, status: 'triage', category: null }, {}), /nothing to change/);
  const ack = applyTriage({ id: 1, status: 'received', category: null }, { status: 'triage' });
  assert.deepEqual([ack.acknowledges, ack.responds, ack.resolves], [true, false, false]);
  const note = applyTriage({ id: 1, status: 'triage', category: null }, { note: 'called them back' });
  assert.deepEqual([note.status, note.responds], ['triage', true]);
  const inc = applyTriage({ id: 1, status: 'triage', category: null }, { status: 'incident', category: 'C2' });
  assert.deepEqual([inc.status, inc.category, inc.responds], ['incident', 'C2', true]);
  assert.equal(applyTriage({ id: 1, status: 'incident', category: 'C2' }, { status: 'resolved' }).resolves, true);
});

test('SLA: targets grow from C1 to C6; uncategorised runs on C3; due, overdue and late at a given now', () => {
  for (let i = 1; i < CATEGORIES.length; i++) {
    const a = SLA_TARGETS[CATEGORIES[i - 1]!];
    const b = SLA_TARGETS[CATEGORIES[i]!];
    assert.ok(b.acknowledgeMs > a.acknowledgeMs && b.firstResponseMs > a.firstResponseMs, `${CATEGORIES[i]} is slower than ${CATEGORIES[i - 1]}`);
    assert.ok(a.acknowledgeMs < a.firstResponseMs);
  }
  assert.equal(SLA_TARGETS.C1.acknowledgeMs, 15 * 60_000);
  assert.equal(SLA_TARGETS.C1.firstResponseMs, 3_600_000);
  const received = new Date('2026-03-02T10:00:00Z');
  assert.equal(dueTimes(received, 'C1').acknowledgeDue.toISOString(), '2026-03-02T10:15:00.000Z');
  assert.equal(dueTimes(received, null).acknowledgeDue.toISOString(), '2026-03-02T11:00:00.000Z');

  const base = { status: 'received' as const, category: null, receivedAt: received, acknowledgedAt: null, firstResponseAt: null };
  const early = slaClocks(base, new Date('2026-03-02T10:59:00Z'));
  assert.deepEqual([early.provisional, early.category, early.acknowledge.overdue, early.overdue], [true, 'C3', false, false]);
  const late = slaClocks(base, new Date('2026-03-02T11:01:00Z'));
  assert.deepEqual([late.acknowledge.overdue, late.firstResponse.overdue, late.overdue], [true, false, true]);
  const c1 = slaClocks({ ...base, status: 'incident', category: 'C1', acknowledgedAt: new Date('2026-03-02T10:20:00Z') }, new Date('2026-03-02T11:30:00Z'));
  assert.deepEqual([c1.acknowledge.overdue, c1.acknowledge.late, c1.firstResponse.overdue], [false, true, true]);
  const done = slaClocks({ ...base, status: 'resolved', category: 'C1' }, new Date('2026-03-09T00:00:00Z'));
  assert.equal(done.overdue, false, 'a resolved report has no running clock');
});
