/**
 * The pure findings rules (src/findings/lifecycle.ts), and the SQL fold agreeing with them: random histories of
 * scans (vulnerable, indeterminate, patched, refused, timeout, another product) are folded by the store, after
 * each scan and all at once, and compared with the pure state machine run over the same evidence.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ScanRecord } from '../src/core/contracts/scan-record.js';
import { createScanStore } from '../src/platform/db/scan-store.js';
import type { AttemptResult } from '../src/scan/ports.js';
import { foldFindings } from '../src/services/findings.js';
import {
  checkAnalystClose, effectOn, expired, step, REOPEN_WINDOW_MS, type Evidence, type FindingSnapshot, type FindingVerdict,
} from '../src/findings/index.js';
import { isTocsinError } from '../src/core/errors.js';
import { sql } from 'kysely';
import { testEachBackend } from './helpers/db.js';

const DAY = 86_400_000;
const T0 = Date.parse('2026-02-01T00:00:00Z');
const at = (d: number): Date => new Date(T0 + d * DAY);

function verdict(d: number, vulnerable: string[], indeterminate: string[] = [], product: string | null = 'ms-exchange', buildKnown = true, fromScan = true): Evidence {
  return { kind: 'verdict', at: at(d), fromScan, product, buildKnown, vulnerable, indeterminate };
}

const open = (d: number, v: FindingVerdict = 'vulnerable'): FindingSnapshot => ({
  state: 'open', closeReason: null, closedAt: null, closedUntil: null, product: 'ms-exchange', verdict: v, present: true, lastAt: at(d),
});

test('effectOn: seen, fixed only with a build of the same product, gone only from a covering scan', () => {
  assert.deepEqual(effectOn('A', 'ms-exchange', verdict(1, ['A'])), { kind: 'seen', verdict: 'vulnerable' });
  assert.deepEqual(effectOn('A', 'ms-exchange', verdict(1, [], ['A'])), { kind: 'seen', verdict: 'indeterminate' });
  assert.deepEqual(effectOn('A', 'ms-exchange', verdict(1, [])), { kind: 'fixed' });
  assert.deepEqual(effectOn('A', 'ms-exchange', verdict(1, [], [], 'ms-exchange', false)), { kind: 'none' }, 'no build read: says nothing');
  assert.deepEqual(effectOn('A', 'ms-exchange', verdict(1, [], [], 'iis')), { kind: 'gone' });
  assert.deepEqual(effectOn('A', 'ms-exchange', verdict(1, [], [], 'iis', false, false)), { kind: 'none' }, 'a feed row does not cover a port');
  assert.deepEqual(effectOn('A', 'ms-exchange', { kind: 'gone', at: at(1) }), { kind: 'gone' });
  assert.deepEqual(effectOn('compromised', null, verdict(1, [])), { kind: 'none' }, 'a patch does not undo a compromise');
  assert.deepEqual(effectOn('compromised', null, { kind: 'compromised', at: at(1) }), { kind: 'seen', verdict: 'compromised' });
});

test('step: open, close, reopen within 90 days, supersede after, stale evidence ignored, analyst expiry', () => {
  assert.deepEqual(step(null, 'A', verdict(0, ['A'])), { action: 'open', verdict: 'vulnerable' });
  assert.deepEqual(step(null, 'A', verdict(0, [])), { action: 'none' });
  assert.deepEqual(step(open(0), 'A', verdict(5, [])), { action: 'close', reason: 'patched' });
  assert.deepEqual(step(open(0), 'A', { kind: 'gone', at: at(5) }), { action: 'close', reason: 'service-gone' });
  assert.deepEqual(step(open(0, 'indeterminate'), 'A', verdict(5, ['A'])), { action: 'touch', verdict: 'vulnerable', present: true, event: 'verified' });
  assert.deepEqual(step(open(0), 'A', verdict(5, [], ['A'])), { action: 'touch', verdict: 'indeterminate', present: true, event: 'changed' });
  assert.deepEqual(step(open(10), 'A', verdict(5, [])), { action: 'none' }, 'older than the latest evidence');
  const closed: FindingSnapshot = { ...open(0), state: 'closed', closeReason: 'patched', closedAt: at(10), present: false, lastAt: at(10) };
  assert.deepEqual(step(closed, 'A', verdict(100, ['A'])), { action: 'reopen', verdict: 'vulnerable' });
  assert.equal(REOPEN_WINDOW_MS, 90 * DAY);
  assert.deepEqual(step(closed, 'A', verdict(101, ['A'])), { action: 'supersede', verdict: 'vulnerable' });
  const fp: FindingSnapshot = { ...open(0), state: 'closed', closeReason: 'false-positive', closedAt: at(1), closedUntil: at(10) };
  assert.deepEqual(step(fp, 'A', verdict(5, ['A'])), { action: 'touch', verdict: 'vulnerable', present: true, event: null });
  assert.deepEqual(step(fp, 'A', verdict(11, ['A'])), { action: 'reopen', verdict: 'vulnerable' });
  assert.equal(expired(fp, at(9)), false);
  assert.equal(expired(fp, at(10)), true);
  assert.equal(expired({ ...fp, present: false }, at(11)), false);
  assert.equal(expired({ ...fp, closedUntil: null }, at(1000)), false, 'no expiry: closed for good');
  assert.throws(() => checkAnalystClose(open(0), 'patched', null, at(1)), (e) => isTocsinError(e) && e.code === 'TOCSIN_ARG_INVALID');
  assert.throws(() => checkAnalystClose(open(0), 'false-positive', at(0), at(1)), (e) => isTocsinError(e) && e.code === 'TOCSIN_ARG_INVALID');
  assert.throws(() => checkAnalystClose(fp, 'false-positive', null, at(1)), (e) => isTocsinError(e) && e.code === 'TOCSIN_FINDING_STATE');
  assert.equal(checkAnalystClose(open(0), 'accepted-risk', at(30), at(1)), 'accepted-risk');
});

// --- The SQL fold against the pure machine.

type Scan = { readonly day: number } & (
  | { readonly kind: 'answer'; readonly vulnerable: string[]; readonly indeterminate: string[]; readonly product: string }
  | { readonly kind: 'refused' | 'timeout' });

const CVES = ['CVE-A', 'CVE-B', 'CVE-C'];

/** Deterministic xorshift: a failing history can be replayed from its seed. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

function history(seed: number, length: number): Scan[] {
  const r = rng(seed);
  let d = 0;
  const out: Scan[] = [];
  for (let i = 0; i < length; i++) {
    d += 1 + Math.floor(r() * 70);
    const k = r();
    if (k < 0.15) out.push({ day: d, kind: 'refused' });
    else if (k < 0.25) out.push({ day: d, kind: 'timeout' });
    else if (k < 0.3) out.push({ day: d, kind: 'answer', vulnerable: [], indeterminate: [], product: 'iis' });
    else {
      const vulnerable = CVES.filter(() => r() < 0.45);
      const indeterminate = CVES.filter((c) => !vulnerable.includes(c) && r() < 0.2);
      out.push({ day: d, kind: 'answer', vulnerable, indeterminate, product: 'ms-exchange' });
    }
  }
  return out;
}

interface ModelFinding extends FindingSnapshot {
  readonly firstSeen: Date;
}

/** The pure machine over a history: per CVE, the current finding, and how many findings were ever opened. */
function model(scans: readonly Scan[]): { current: Map<string, ModelFinding>; total: number } {
  const current = new Map<string, ModelFinding>();
  let total = 0;
  for (const s of scans) {
    let e: Evidence;
    if (s.kind === 'answer') e = verdict(s.day, s.vulnerable, s.indeterminate, s.product, s.product === 'ms-exchange');
    else if (s.kind === 'refused') e = { kind: 'gone', at: at(s.day) };
    else continue; // a timeout is no evidence
    for (const cve of CVES) {
      const f = current.get(cve) ?? null;
      const st = step(f, cve, e);
      const fresh = (v: FindingVerdict): ModelFinding => ({
        state: 'open', closeReason: null, closedAt: null, closedUntil: null, product: e.kind === 'verdict' ? e.product : null, verdict: v,
        present: true, lastAt: e.at, firstSeen: e.at,
      });
      if (st.action === 'open' || st.action === 'supersede') {
        current.set(cve, fresh(st.verdict));
        total++;
      } else if (f !== null && st.action === 'touch') current.set(cve, { ...f, verdict: st.verdict ?? f.verdict, present: st.present, lastAt: e.at });
      else if (f !== null && st.action === 'close') current.set(cve, { ...f, state: 'closed', closeReason: st.reason, closedAt: e.at, present: false, lastAt: e.at });
      else if (f !== null && st.action === 'reopen') current.set(cve, { ...f, state: 'open', closeReason: null, closedAt: null, closedUntil: null, verdict: st.verdict, present: true, lastAt: e.at });
    }
  }
  return { current, total };
}

function attempt(s: Scan): AttemptResult {
  const ip = '198.51.100.7';
  if (s.kind !== 'answer') {
    return { ip, port: 443, hostname: null, outcome: s.kind, detail: s.kind, record: null, facts: [], detectorRevisions: {}, tlsCert: null, attemptedAt: at(s.day).toISOString() };
  }
  const exchange = s.product === 'ms-exchange';
  const record: ScanRecord = {
    ip, port: 443, hostname: null, tls: true, product: s.product, edition: null, build: exchange ? '15.1.2176.2' : null, buildPrecision: exchange ? 'exact' : null,
    cu: null, su: null, vulnerable: s.vulnerable, indeterminate: s.indeterminate, evidence: [], scannedAt: at(s.day).toISOString(), status: 200, notes: [],
  };
  return { ip, port: 443, hostname: null, outcome: 'answered', detail: null, record, facts: [], detectorRevisions: {}, tlsCert: null, attemptedAt: at(s.day).toISOString() };
}

testEachBackend('the SQL fold agrees with the pure state machine on random histories (folded per scan and all at once)', async ({ database }) => {
  const store = createScanStore(database.db, { kbRevision: 'kb-test' });
  for (const seed of [7, 1234, 99_991]) {
    for (const mode of ['each', 'once'] as const) {
      // observations and assessments named too: no foreign key ties them to scans since migration 0023 (partitions)
      await sql`TRUNCATE findings, finding_events, scans, observations, assessment_rows, observation_responses CASCADE`.execute(database.db);
      await sql`UPDATE findings_fold_state SET last_assessment_id = 0, last_attempt_id = 0, last_feed_row_id = 0`.execute(database.db);
      const scans = history(seed, 10);
      for (const s of scans) {
        const scan = await store.createScan({ targets: ['198.51.100.7'], ports: [443], options: {} });
        await store.recordBatch(scan.id, [attempt(s)]);
        if (mode === 'each') await foldFindings(database.db, { now: at(s.day), attributions: 'stored' });
      }
      if (mode === 'once') await foldFindings(database.db, { now: at(1000), attributions: 'stored' });
      const want = model(scans);
      const rows = await database.db.selectFrom('findings').selectAll().execute();
      const label = `seed ${seed}, folded ${mode}: ${JSON.stringify(scans)}`;
      assert.equal(rows.length, want.total, label);
      const got = new Map(rows.filter((r) => r.current).map((r) => [r.cve, r]));
      assert.deepEqual([...got.keys()].sort(), [...want.current.keys()].sort(), label);
      for (const [cve, m] of want.current) {
        const g = got.get(cve)!;
        assert.deepEqual(
          { state: g.state, reason: g.close_reason, firstSeen: g.first_seen.toISOString(), verdict: g.verdict, present: g.present, lastAt: g.last_at.toISOString() },
          { state: m.state, reason: m.closeReason, firstSeen: m.firstSeen.toISOString(), verdict: m.verdict, present: m.present, lastAt: m.lastAt.toISOString() },
          `${cve} — ${label}`);
      }
    }
  }
});
