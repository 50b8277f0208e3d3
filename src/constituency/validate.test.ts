import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkAsn, checkCountry, checkDomain, checkEmail, checkLanguage, checkNetwork, checkOrgName, checkPgp, checkRole, rangeToCidrs, splitList, splitNetworks } from './validate.js';
import { csvRows } from './csv-rows.js';
import { decodeImportFile, detectFormat } from './index.js';

const okv = <T>(c: { ok: true; value: T } | { ok: false; error: string }): T => {
  assert.ok(c.ok, c.ok ? '' : c.error);
  return c.value;
};
const err = (c: { ok: boolean; error?: string }): string => {
  assert.equal(c.ok, false);
  return c.error ?? '';
};

test('networks: CIDR masked, bare address, ranges as minimal CIDR lists, bad input explained', () => {
  assert.deepEqual(okv(checkNetwork('192.0.2.5/24')).cidrs, ['192.0.2.0/24']);
  assert.deepEqual(okv(checkNetwork('192.0.2.7')).cidrs, ['192.0.2.7/32']);
  assert.deepEqual(okv(checkNetwork('2001:DB8::/32')).cidrs, ['2001:db8::/32']);
  assert.deepEqual(okv(checkNetwork('192.0.2.0 - 192.0.2.255')).cidrs, ['192.0.2.0/24']);
  // 198.51.100.0-95 = /26 + /27 (64 + 32 addresses)
  assert.deepEqual(okv(checkNetwork('198.51.100.0 - 198.51.100.95')), { text: '198.51.100.0 - 198.51.100.95', cidrs: ['198.51.100.0/26', '198.51.100.64/27'] });
  assert.deepEqual(okv(checkNetwork('10.0.0.1-10.0.0.6')).cidrs, ['10.0.0.1/32', '10.0.0.2/31', '10.0.0.4/31', '10.0.0.6/32']);
  assert.deepEqual(okv(checkNetwork('2001:db8:: - 2001:db8::ffff')).cidrs, ['2001:db8::/112']);
  assert.deepEqual(rangeToCidrs(4, 0n, 0xffffffffn), ['0.0.0.0/0']);
  assert.match(err(checkNetwork('203.0.113.0/33')), /prefix/);
  assert.match(err(checkNetwork('10.0.0.0 - 10.0.0.300')), /range/);
  assert.match(err(checkNetwork('10.0.0.9 - 10.0.0.1')), /after the last/);
  assert.match(err(checkNetwork('10.0.0.0 - 2001:db8::1')), /mixes/);
  assert.match(err(checkNetwork('example.org')), /not a CIDR/);
});

test('ASNs, domains, e-mail, language, OpenPGP, role, country, names', () => {
  assert.equal(okv(checkAsn('AS64496')), 64496);
  assert.equal(okv(checkAsn('as64496')), 64496);
  assert.equal(okv(checkAsn(' 64496 ')), 64496);
  assert.equal(okv(checkAsn('1.10')), 65546);
  assert.equal(okv(checkAsn('4294967295')), 4294967295);
  for (const bad of ['AS0', '4294967296', 'ASX1', 'AS23456', '']) err(checkAsn(bad));
  assert.equal(okv(checkDomain('Bücher.Example.')), 'xn--bcher-kva.example');
  assert.equal(okv(checkDomain('*.example.org')), 'example.org');
  for (const bad of ['localhost', 'exa mple.org', '-x.example', '192.0.2.1', '']) err(checkDomain(bad));
  assert.equal(okv(checkEmail('CERT@Example.ORG')), 'CERT@example.org');
  assert.equal(okv(checkEmail('mailto:a.b+c@bücher.example')), 'a.b+c@xn--bcher-kva.example');
  for (const bad of ['not-an-email', 'a@b', 'a b@example.org', '@example.org', 'a..b@example.org']) err(checkEmail(bad));
  assert.equal(okv(checkLanguage('en-GB')), 'en-gb');
  assert.equal(okv(checkLanguage('')), null);
  err(checkLanguage('english!'));
  assert.equal(okv(checkPgp('0123 4567 89ab cdef 0123  4567 89AB CDEF 0123 4567')), '0123456789ABCDEF0123456789ABCDEF01234567');
  err(checkPgp('0123'));
  assert.equal(okv(checkRole(' Abuse ')), 'abuse');
  err(checkRole('boss'));
  assert.equal(okv(checkCountry('de')), 'DE');
  err(checkCountry('Germany'));
  assert.equal(okv(checkOrgName('  Example   GmbH ')), 'Example GmbH');
  assert.match(err(checkOrgName('Evil\u202eCorp')), /invisible/);
  err(checkOrgName('   '));
});

test('list cells split on spaces, ";" and ","; a network range stays one value', () => {
  assert.deepEqual(splitList('a@x.example; b@x.example,c@x.example  d@x.example'), ['a@x.example', 'b@x.example', 'c@x.example', 'd@x.example']);
  assert.deepEqual(splitNetworks('192.0.2.0/24; 198.51.100.0 - 198.51.100.95 2001:db8::/32'), ['192.0.2.0/24', '198.51.100.0 - 198.51.100.95', '2001:db8::/32']);
});

test('csvRows: BOM, CRLF, quoted commas and line breaks, with each row\'s first line and raw text', () => {
  const rows = csvRows('\ufeffa,b\r\n"x, y","multi\nline"\r\nlast,"un""quoted"\n');
  assert.deepEqual(rows.map((r) => r.line), [1, 2, 4]);
  assert.deepEqual(rows[1]?.cells, ['x, y', 'multi\nline']);
  assert.equal(rows[1]?.raw, '"x, y","multi\nline"');
  assert.deepEqual(rows[2]?.cells, ['last', 'un"quoted']);
  assert.equal(csvRows('a,"open\n').at(-1)?.unterminated, true);
});

test('format detection and binary refusal', () => {
  assert.equal(detectFormat('x.csv', '[]'), 'csv');
  assert.equal(detectFormat('ripe.db.inetnum', ''), 'rpsl');
  assert.equal(detectFormat('export', '  \n{"organisations": []}'), 'json');
  assert.equal(detectFormat('dump', '# c\ninetnum: 192.0.2.0 - 192.0.2.255\n'), 'rpsl');
  assert.equal(detectFormat('list', 'organisation,networks\n'), 'csv');
  const refused = (bytes: number[]): string => {
    const d = decodeImportFile('f', Uint8Array.from(bytes));
    assert.ok('problem' in d);
    return d.problem.error;
  };
  assert.match(refused([0x1f, 0x8b, 8, 0]), /gzip/);
  assert.match(refused([0x50, 0x4b, 3, 4, 0]), /zip/);
  assert.match(refused([0x61, 0, 0x62]), /binary/);
  assert.match(refused([0x61, 0xe4, 0x62]), /UTF-8/);
  assert.deepEqual(decodeImportFile('f', new TextEncoder().encode('ä')), { text: 'ä' });
});
