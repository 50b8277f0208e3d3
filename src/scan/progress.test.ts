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
  assert.match(s.out.at(-1) ?? '', /^scan: 20 attempts .* Exchange 3, vulnerable 2\n$/);
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
