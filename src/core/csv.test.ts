import assert from 'node:assert/strict';
import { test } from 'node:test';
import { csvCell, csvDocument, csvRecordsDocument, csvRow, DATA_FILE_CSV, parseCsv, parseCsvRecords } from './csv.js';

test('csv: plain cells are left alone; null/undefined are empty; numbers and booleans as is', () => {
  assert.equal(csvCell('Exchange Server 2019'), 'Exchange Server 2019');
  assert.equal(csvCell(null), '');
  assert.equal(csvCell(undefined), '');
  assert.equal(csvCell(-3), '-3');
  assert.equal(csvCell(0.25), '0.25');
  assert.equal(csvCell(Number.NaN), '');
  assert.equal(csvCell(true), 'true');
});

test('csv: RFC 4180 quoting of quotes, commas, line breaks and edge spaces', () => {
  assert.equal(csvCell('a,b'), '"a,b"');
  assert.equal(csvCell('say "hi"'), '"say ""hi"""');
  assert.equal(csvCell('line1\nline2'), '"line1\nline2"');
  assert.equal(csvCell('x\r\ny'), '"x\r\ny"');
  assert.equal(csvCell(' padded '), '" padded "');
});

test('csv: formula injection is neutralised for every dangerous leading character', () => {
  for (const lead of ['=', '+', '-', '@', '\t', '\r']) {
    const cell = csvCell(`${lead}cmd|' /C calc'!A0`);
    const unquoted = cell.startsWith('"') ? cell.slice(1, -1).replace(/""/g, '"') : cell;
    assert.ok(unquoted.startsWith(`'${lead}`), `${JSON.stringify(lead)} -> ${JSON.stringify(cell)}`);
  }
  assert.equal(csvCell('=HYPERLINK("http://x")'), `"'=HYPERLINK(""http://x"")"`);
  assert.equal(csvCell('-1'), "'-1", 'text that looks like a number is still text');
  assert.equal(csvCell('a=b'), 'a=b', 'only a leading character matters');
});

test('csv: rows and documents', () => {
  assert.equal(csvRow(['a', 1, null, '=x']), "a,1,,'=x");
  assert.equal(csvDocument(['h1', 'h2'], [['v', 2]]), 'h1,h2\r\nv,2\r\n');
});

test('csv: data-file options write LF and no formula guard, and read back to the same values', () => {
  const records = [{ build: '15.1.2176.9', note: '-1 = "minus one", see x' }, { build: '=cmd', note: '' }];
  const text = csvRecordsDocument(['build', 'note'], records, DATA_FILE_CSV);
  assert.equal(text, 'build,note\n15.1.2176.9,"-1 = ""minus one"", see x"\n=cmd,\n');
  assert.deepEqual(parseCsvRecords(text, ['build', 'note']).records, records);
  // the spreadsheet default guards the same cell (and so does not round-trip: the reason for the option)
  assert.equal(csvRecordsDocument(['build'], [{ build: '=cmd' }]), "build\r\n'=cmd\r\n");
});

test('csv reader: quotes, doubled quotes, line breaks inside quotes, CRLF, BOM, no empty last row', () => {
  assert.deepEqual(parseCsv('\ufeffa,"b,c","say ""hi"""\r\n"x\ny",,z\n'), [['a', 'b,c', 'say "hi"'], ['x\ny', '', 'z']]);
  assert.deepEqual(parseCsv('a,b'), [['a', 'b']]);
  assert.deepEqual(parseCsv(''), []);
});

test('csv reader: records name missing columns and rows of the wrong width; blank lines skipped', () => {
  const r = parseCsvRecords('a,b\n1,2\n\n3\n', ['a', 'c']);
  assert.deepEqual(r.header, ['a', 'b']);
  assert.deepEqual(r.records, [{ a: '1', b: '2' }, { a: '3', b: '' }]);
  assert.deepEqual(r.problems, ['missing column "c"', 'line 4: 1 fields, header has 2']);
});
