import { test } from 'node:test';
import assert from 'node:assert/strict';
import { outputFormat, parseIntFlag } from './args.js';
import { TocsinError } from '../core/errors.js';

test('parseIntFlag: whole numbers within the range', () => {
  assert.equal(parseIntFlag('--workers', '0', 0, 64), 0);
  assert.equal(parseIntFlag('--workers', ' 64 ', 0, 64), 64);
  assert.equal(parseIntFlag('--seed', '007', 0, 0xffffffff), 7);
  assert.equal(parseIntFlag('--rate', undefined, 0, 10), undefined);
});

test('parseIntFlag: anything else is TOCSIN_ARG_INVALID naming the flag and the range', () => {
  for (const bad of ['', ' ', '-1', '65', '1.5', '1e2', '0x10', 'abc', '+3', '99999999999999999999']) {
    assert.throws(
      () => parseIntFlag('--workers', bad, 0, 64),
      (e: unknown) => e instanceof TocsinError && e.code === 'TOCSIN_ARG_INVALID' && e.message.includes('--workers') && e.message.includes('0 to 64'),
      JSON.stringify(bad),
    );
  }
});

test('output format: --format wins, else the --output extension, else the default; contradictions refused', () => {
  const byExt = { '.csv': 'csv', '.jsonl': 'jsonl', '.json': 'jsonl', '.txt': 'table' } as const;
  assert.equal(outputFormat(undefined, 'out.csv', byExt, 'jsonl'), 'csv');
  assert.equal(outputFormat(undefined, '/tmp/OUT.CSV', byExt, 'jsonl'), 'csv');
  assert.equal(outputFormat(undefined, 'hosts.txt', byExt, 'jsonl'), 'table');
  assert.equal(outputFormat(undefined, 'out', byExt, 'jsonl'), 'jsonl');
  assert.equal(outputFormat(undefined, 'dir.csv/out', byExt, 'jsonl'), 'jsonl', 'a dot in a folder name is no extension');
  assert.equal(outputFormat(undefined, undefined, byExt, 'jsonl'), 'jsonl');
  assert.equal(outputFormat('csv', undefined, byExt, 'jsonl'), 'csv');
  assert.equal(outputFormat('jsonl', 'out.json', byExt, 'jsonl'), 'jsonl');
  assert.equal(outputFormat('jsonl', 'notes.txt', byExt, 'jsonl'), 'jsonl', '.txt contradicts nothing');
  assert.throws(() => outputFormat('jsonl', 'out.csv', byExt, 'jsonl'), (e: unknown) => e instanceof TocsinError && e.code === 'TOCSIN_ARG_INVALID' && /contradicts --output "out\.csv" \(a \.csv file gets csv\)/.test(e.message));
  assert.throws(() => outputFormat('table', 'x.jsonl', byExt, 'jsonl'), /contradicts/);
});
