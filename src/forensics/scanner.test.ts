import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectKind } from './kinds.js';
import { buildRuleSet } from './ruleset.js';
import { LineScanner, MAX_LINE } from './scanner.js';
import type { FindingRecord, Notice } from './types.js';

const FIELDS = 'DateTime,RequestId,Protocol,UrlStem,UrlQuery,AnchorMailbox,UserAgent,ClientIpAddress,HttpStatus,Method,RoutingHint';
const LOG = [
  '#Software: Microsoft Exchange Server',
  '#Log-type: HttpProxy Logs',
  `#Fields: ${FIELDS}`,
  '2021-03-01T00:00:00.000Z,r1,Ecp,/ecp/default.aspx,,Sid~S-1,"Mozilla/5.0 (x, ""y"")",10.0.0.1,200,GET,WindowsIdentity',
  '2021-03-03T06:49:42.162Z,r2,Ecp,/ecp/y.js,,ServerInfo~a]@srv:444/ecp/proxyLogon.ecp?#,python-requests/2.25.1,203.0.113.5,241,POST,X-BEResource-Cookie',
  '2021-03-03T06:50:00.000Z,r3,Ecp,/ecp/y.js,,"ServerInfo~a]@srv:444/mapi/emsmdb/?#,python',
  '#Fields: DateTime,ClientIpAddress,AnchorMailbox,HttpStatus,UrlStem,Method',
  '2021-03-04T00:00:00.000Z,203.0.113.6,ServerInfo~b]@srv:444/ews/exchange.asmx?#,200,/ecp/z.js,GET',
  '2021-03-05T00:00:00.000Z,10.0.0.2,Smtp~u@example.org,200,/mapi/emsmdb/,POST',
  '',
].join('\r\n');

function scan(text: string, chunk: number): { findings: FindingRecord[]; notices: Notice[]; lines: number; first: string | null; last: string | null; days: string[] } {
  const det = detectKind('Logging/HttpProxy/Ecp/HttpProxy_1.LOG', text.slice(0, 65536));
  const findings: FindingRecord[] = [];
  const notices: Notice[] = [];
  const s = new LineScanner({
    file: 'f.LOG',
    kind: det.kind,
    layout: det.layout,
    rules: buildRuleSet(det.kind, null),
    sink: { finding: (f) => findings.push(f), notice: (n) => notices.push(n) },
  });
  const buf = Buffer.from(text, 'utf8');
  for (let i = 0; i < buf.length; i += chunk) s.push(buf.subarray(i, i + chunk));
  const st = s.end();
  return { findings, notices, lines: st.lines, first: st.first, last: st.last, days: [...st.days].sort() };
}

test('finds rows by header name, exact line numbers, a torn line reported and skipped, a mid-file #Fields honoured', () => {
  const r = scan(LOG, 1 << 20);
  assert.deepEqual(
    r.findings.map((f) => [f.check, f.line, f.clientIp, f.time]),
    [
      ['proxylogon-ssrf-anchor', 5, '203.0.113.5', '2021-03-03T06:49:42.162Z'],
      ['proxylogon-static-post', 5, '203.0.113.5', '2021-03-03T06:49:42.162Z'],
      ['proxylogon-ssrf-anchor', 8, '203.0.113.6', '2021-03-04T00:00:00.000Z'],
    ],
  );
  assert.deepEqual(r.notices.map((n) => [n.line, /unterminated/.test(n.message)]), [[6, true]]);
  assert.equal(r.lines, 9);
  assert.equal(r.first, '2021-03-01T00:00:00.000Z');
  assert.equal(r.last, '2021-03-05T00:00:00.000Z');
});

test('the result does not depend on how the bytes are chunked', () => {
  const whole = scan(LOG, 1 << 20);
  for (const size of [1, 2, 3, 7, 64, 333]) {
    const r = scan(LOG, size);
    assert.deepEqual(r.findings, whole.findings, `chunk ${size}`);
    assert.deepEqual(r.notices, whole.notices, `chunk ${size}`);
    assert.equal(r.lines, whole.lines, `chunk ${size}`);
  }
});

test('a file without a final newline still has its last line judged', () => {
  const r = scan(LOG.trimEnd().replace(/\r\n2021-03-05.*$/, '\r\n2021-03-05T00:00:00.000Z,198.51.100.1,ServerInfo~c]@srv:444/x?#,200,/ecp/q.js,GET'), 5);
  assert.equal(r.findings.at(-1)?.line, 9);
  assert.equal(r.findings.at(-1)?.clientIp, '198.51.100.1');
});

test('an over-long line is reported and skipped, and scanning resumes after it', () => {
  const long = `2021-03-03T00:00:00.000Z,x,Ecp,/ecp/a.js,,ServerInfo~${'A'.repeat(2 * MAX_LINE)}`;
  const text = [`#Fields: ${FIELDS}`, long, '2021-03-03T06:49:42.162Z,r2,Ecp,/ecp/y.js,,ServerInfo~a]@srv:444/ecp/x?#,ua,203.0.113.5,200,GET,X-BEResource-Cookie', ''].join('\n');
  const r = scan(`#Log-type: HttpProxy Logs\n${text}`, 65536);
  assert.equal(r.notices.length, 1);
  assert.match(r.notices[0]!.message, /longer than/);
  assert.deepEqual(r.findings.map((f) => [f.check, f.line]), [['proxylogon-ssrf-anchor', 4]]);
});

test('kinds come from headers first, then from the path (Windows or POSIX separators)', () => {
  assert.equal(detectKind('x.log', '#Software: Microsoft Internet Information Services 10.0\n#Fields: date time cs-uri-stem\n').kind, 'iis-w3c');
  assert.equal(detectKind('x.log', '#Software: Microsoft Exchange Server\n#Log-type: ECP Server Log\n').kind, 'exchange-ecp-server');
  assert.equal(detectKind('C:\\Exchange\\Logging\\OABGeneratorLog\\a.LOG', '2021-03-03T00:00:00Z,x\n').kind, 'exchange-oab-generator');
  assert.equal(detectKind('/copies/inetpub/logs/LogFiles/W3SVC2/u_ex210303.log', '2021-03-03 00:00:00 x\n').kind, 'iis-w3c');
  assert.equal(detectKind('a/b/shell.aspx', '<%@ Page %>').kind, 'file');
  assert.equal(detectKind('export.csv', '#TYPE Selected.X\n"DateTime","AnchorMailbox","UrlStem"\n').kind, 'csv-table');
  assert.equal(detectKind('app.xml', "<Event xmlns='x'><System>").kind, 'event-export');
  assert.equal(detectKind('notes.txt', 'hello').kind, 'text');
  const iis = detectKind('W3SVC1/u_ex1.log', '2021-03-05 03:06:27 x GET /owa/auth/a.aspx - 443 - 1.2.3.4 UA - 200 0 0 1\n');
  assert.equal(iis.assumed, true);
  assert.equal(iis.layout?.index.get('HttpStatus'), 11);
});

test('the prefilter loses nothing: judging every line gives the same records on every fixture log', async () => {
  const { readdirSync, readFileSync, statSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const root = fileURLToPath(new URL('../../test/fixtures/forensics/server1', import.meta.url));
  const walk = (d: string): string[] => readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]));
  let compared = 0;
  for (const file of walk(root)) {
    const text = readFileSync(file, 'utf8');
    const det = detectKind(file, text.slice(0, 65536));
    if (det.kind === 'file') continue;
    const run = (everyLine: boolean): FindingRecord[] => {
      const rs = buildRuleSet(det.kind, null);
      const rules = everyLine ? { ...rs, prefilter: /^[^\n]/gm } : rs;
      const out: FindingRecord[] = [];
      const s = new LineScanner({ file, kind: det.kind, layout: det.layout, rules, sink: { finding: (f) => out.push(f), notice: () => {} } });
      s.push(Buffer.from(text));
      s.end();
      return out;
    };
    assert.deepEqual(run(false), run(true), file);
    compared++;
  }
  assert.ok(compared >= 8);
});

test('hostile bytes never crash the scanner (random data, NULs, lone quotes, every kind)', () => {
  let seed = 42;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const alphabet = ['"', ',', '\n', '\r', '\0', ' ', '#Fields: a,b', 'ServerInfo~', '/owa/auth/x.aspx', '<Event>', 'autodiscover.json', '\u00ff', 'x'];
  for (const kind of ['exchange-httpproxy', 'iis-w3c', 'csv-table', 'event-export', 'text', 'exchange-ecp-server'] as const) {
    let text = '';
    for (let i = 0; i < 4000; i++) text += alphabet[Math.floor(rnd() * alphabet.length)]!;
    const det = detectKind('x.log', '#Fields: DateTime,UrlStem,AnchorMailbox,HttpStatus\n');
    const s = new LineScanner({ file: 'x', kind, layout: det.layout, rules: buildRuleSet(kind, null), sink: { finding: () => {}, notice: () => {} } });
    const buf = Buffer.from(text, 'latin1');
    for (let i = 0; i < buf.length; i += 97) s.push(buf.subarray(i, i + 97));
    const st = s.end();
    assert.ok(st.lines > 0, kind);
  }
});

test('event exports are recognised with a byte-order mark, in other languages and from PowerShell Export-Csv', () => {
  const bom = '\uFEFFLevel,Date and Time,Source,Event ID,Task Category\r\nError,3/3/2021 6:55:41 AM,MSExchange Unified Messaging,1040,UM,"x"\r\n';
  assert.equal(detectKind('exports/app.csv', bom).kind, 'event-export');
  assert.equal(detectKind('x.log', '\uFEFF#Software: Microsoft Exchange Server\n#Log-type: ECP Server Log\n').kind, 'exchange-ecp-server');
  const de = 'Ebene,Datum und Uhrzeit,Quelle,Ereignis-ID,Aufgabenkategorie\r\nFehler,03.03.2021 07:20:11,MSExchange Unified Messaging,1040,UM,"x"\r\n';
  assert.equal(detectKind('anwendung.csv', de).kind, 'event-export');
  const ps = '#TYPE System.Diagnostics.Eventing.Reader.EventLogRecord\r\n"Message","Id","ProviderName","TimeCreated"\r\n';
  assert.equal(detectKind('um.csv', ps).kind, 'event-export');
  // A five-column request extract whose rows start with a timestamp is not an event export.
  assert.equal(detectKind('hits.csv', 'timestamp,hostname,urlpath,status,method\r\n2021-03-05T03:06:27Z,h,/owa/auth/a.aspx,200,GET\r\n').kind, 'csv-table');
});

test('event CSV records span lines while the quoted message is open, whatever the level word', () => {
  const text = [
    'Ebene,Datum und Uhrzeit,Quelle,Ereignis-ID,Aufgabenkategorie',
    'Fehler,03.03.2021 07:20:11,MSExchange Unified Messaging,1040,UM,"Ausnahme:',
    'System.InvalidCastException: ""x"" kann nicht umgewandelt werden.',
    '   bei y"',
    'Fehler,03.03.2021 07:25:00,MSExchange Unified Messaging,1001,UM,"ohne Ausnahme"',
    'Warnung,03.03.2021 07:26:00,MSExchange Common,4999,General,"System.InvalidCastException, aber kein UM"',
    '',
  ].join('\r\n');
  const found: FindingRecord[] = [];
  const s = new LineScanner({
    file: 'a.csv', kind: 'event-export', layout: null, rules: buildRuleSet('event-export', null),
    sink: { finding: (f) => found.push(f), notice: () => undefined },
  });
  s.push(Buffer.from(text, 'utf8'));
  s.end();
  assert.deepEqual(found.map((f) => [f.check, f.line, f.time]), [['proxylogon-um-invalidcast', 2, '2021-03-03T07:20:11.000Z']]);
});

test('every day with a record is seen, not only the first and last (any chunk size); non-dates are not days', () => {
  const rows = ['#Software: Microsoft Exchange Server', '#Log-type: HttpProxy Logs', `#Fields: ${FIELDS}`];
  // 2021-03-01 .. 2021-03-04 dense, nothing on 03-05, one row on 03-06, then 03-07 at the end.
  for (const d of ['01', '01', '02', '03', '03', '04', '06']) rows.push(`2021-03-${d}T10:00:00.000Z,r,Ecp,/owa/,,Sid~S-1,ua,10.0.0.1,200,GET,x`);
  rows.push('1234-56-78T00:00:00.000Z,not a date,Ecp,/owa/,,,ua,10.0.0.1,200,GET,x');
  rows.push('2021-02-31T00:00:00.000Z,no such day,Ecp,/owa/,,,ua,10.0.0.1,200,GET,x');
  rows.push('"2021-03-07T00:00:00.000Z",quoted,Ecp,/owa/,,,ua,10.0.0.1,200,GET,x', '');
  for (const chunk of [7, 64, 1 << 20]) {
    const r = scan(rows.join('\r\n'), chunk);
    assert.deepEqual(r.days, ['2021-03-01', '2021-03-02', '2021-03-03', '2021-03-04', '2021-03-06', '2021-03-07'], `chunk ${chunk}`);
  }
});
