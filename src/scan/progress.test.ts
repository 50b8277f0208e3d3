import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Progress, formatDuration } from './progress.js';

function sink(isTTY: boolean): { isTTY: boolean; columns: number; out: string[]; write(s: string): boolean } {
  const out: string[] = [];
  return { isTTY, columns: 120, out, write: (s: string) => out.push(s) > 0 };
}

test('on a terminal: throttled redraws with done/total, rate, ETA and Exchange count', () => {
  let t = 0;
  const s = sink(true);
  const p = new Progress(s, { total: 100, intervalMs: 200, now: () => t });
  t = 1000;
  p.add({ done: 10, answered: 8, exchange: 3, vulnerable: 2 });
  t = 1050; // within the interval: no redraw
  p.add({ done: 10, answered: 0, exchange: 0, vulnerable: 0 });
  assert.equal(s.out.length, 1);
  assert.match(s.out[0] ?? '', /10\/100/);
  assert.match(s.out[0] ?? '', /Exchange 3/);
  assert.match(s.out[0] ?? '', /ETA 9s/);
  t = 2000;
  p.add({ done: 0, answered: 0, exchange: 0, vulnerable: 0 });
  assert.equal(s.out.length, 2);
  assert.match(s.out[1] ?? '', /20\/100/);
  p.finish();
  assert.match(s.out.at(-1) ?? '', /^scan: 20 attempts .* Exchange 3, vulnerable 2 \(to any CVE\)\n$/);
});

test('not a terminal: silent until the one-line summary', () => {
  const s = sink(false);
  const p = new Progress(s, { total: null });
  for (let i = 0; i < 1000; i++) p.add({ done: 1, answered: 1, exchange: 0, vulnerable: 0 });
  assert.equal(s.out.length, 0);
  p.finish();
  assert.equal(s.out.length, 1);
  assert.doesNotMatch(s.out[0] ?? '', /\u001b/);
});

test('durations', () => {
  assert.equal(formatDuration(5), '5s');
  assert.equal(formatDuration(125), '2m05s');
  assert.equal(formatDuration(7300), '2h01m');
});

test('clear(): the bar is erased for good (a table printed next never meets it); counting goes on', () => {
  let t = 0;
  const s = sink(true);
  const p = new Progress(s, { total: 100, intervalMs: 200, now: () => t });
  t = 1000;
  p.add({ done: 10, answered: 1, exchange: 1, vulnerable: 0 });
  assert.equal(s.out.length, 1);
  p.clear();
  assert.equal(s.out.at(-1), '\r\u001b[K');
  const after = s.out.length;
  for (let i = 1; i <= 10; i++) {
    t += 1000;
    p.add({ done: 1, answered: 0, exchange: 0, vulnerable: 0 });
  }
  assert.equal(s.out.length, after, 'nothing drawn after clear()');
  p.finish();
  assert.equal(s.out.length, after + 1);
  assert.match(s.out.at(-1) ?? '', /^scan: 20 attempts/);
  assert.doesNotMatch(s.out.at(-1) ?? '', /\u001b/);
});

test('erase(): the bar steps aside and comes back at the next add(), whatever the interval', () => {
  let t = 0;
  const s = sink(true);
  const p = new Progress(s, { total: 100, intervalMs: 200, now: () => t });
  t = 1000;
  p.add({ done: 1, answered: 0, exchange: 0, vulnerable: 0 });
  p.erase();
  assert.equal(s.out.at(-1), '\r\u001b[K');
  t = 1001; // well within the interval
  p.add({ done: 1, answered: 0, exchange: 0, vulnerable: 0 });
  assert.match(s.out.at(-1) ?? '', /^\r\[.*2\/100/);
});

test('note(): a message goes on its own line above the bar, which is redrawn', () => {
  let t = 0;
  const s = sink(true);
  const p = new Progress(s, { total: 100, intervalMs: 200, now: () => t });
  t = 1000;
  p.add({ done: 5, answered: 0, exchange: 0, vulnerable: 0 });
  const n = s.out.length;
  p.note('tocsin: warning: x\n');
  assert.deepEqual(s.out.slice(n, n + 2), ['\r\u001b[K', 'tocsin: warning: x\n']);
  assert.match(s.out.at(-1) ?? '', /^\r\[.*5\/100/);
  // Not a terminal: only the message.
  const plain = sink(false);
  new Progress(plain, { total: null }).note('m\n');
  assert.deepEqual(plain.out, ['m\n']);
});

test('a terminal that reports no size (0 columns) still gets the whole bar, not 20 characters of it', () => {
  const s = { ...sink(true), columns: 0 };
  let t = 0;
  const p = new Progress(s, { total: 100, now: () => t });
  t = 1000;
  p.add({ done: 10, answered: 1, exchange: 1, vulnerable: 0 });
  assert.match(s.out[0] ?? '', /10\/100 10\.0%.*Exchange 1/);
});
