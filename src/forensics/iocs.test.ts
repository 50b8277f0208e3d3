import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchSignature, normIocPath, parseIocFile } from './iocs.js';

test('plain lists: lines are classified by shape, the file name decides ambiguous lines', () => {
  const s = parseIocFile(
    [
      '# comment',
      '203.0.113.9',
      '2001:db8::7',
      'b75f163ca9b9240bf4b37ad92bc7556b40a17e27c2b8ed5c8991385fe07d17d0',
      'aspnet\\_www.aspx',
      'C:\\inetpub\\wwwroot\\aspnet_client\\',
      'antSword/v2.1',
      '',
    ].join('\r\n'),
    'mixed.txt',
  );
  assert.deepEqual([...s.ips], ['203.0.113.9', '2001:db8::7']);
  assert.deepEqual([...s.hashes.keys()], ['b75f163ca9b9240bf4b37ad92bc7556b40a17e27c2b8ed5c8991385fe07d17d0']);
  assert.deepEqual([...s.fileNames], ['aspnet_www.aspx']);
  assert.deepEqual(s.paths, ['inetpub/wwwroot/aspnet_client']);
  assert.deepEqual(s.userAgents, ['antsword/v2.1']);
  // With a hint, a line that looks like a file name is taken as a user agent.
  const ua = parseIocFile('Mozilla/5.0+(compatible;+Googlebot/2.1)\nfoo.bar\n', 'hafnium-useragents.txt');
  assert.deepEqual(ua.userAgents, ['mozilla/5.0 (compatible; googlebot/2.1)', 'foo.bar']);
  const bad = parseIocFile('not-an-ip\n', 'bad-ip-addresses.txt');
  assert.equal(bad.ips.size, 0);
  assert.equal(bad.warnings.length, 1);
});

test('IoC folder paths lose drive letters, variables, placeholders, comments and install roots', () => {
  assert.equal(normIocPath('%PROGRAMFILES%\\Microsoft\\Exchange Server\\V15\\FrontEnd\\HttpProxy\\owa\\auth\\'), 'frontend/httpproxy/owa/auth');
  assert.equal(normIocPath('\\<exchange install path>\\FrontEnd\\HttpProxy\\ecp\\auth\\ (any file besides X.aspx)'), 'frontend/httpproxy/ecp/auth');
  assert.equal(normIocPath('C:\\Exchange\\FrontEnd\\HttpProxy\\owa\\auth\\'), 'frontend/httpproxy/owa/auth');
});

const CHIRP = `
---
name: "ips"
ioc_type: "network"
indicator:
  ips: |
    192.0.2.1
    192.0.2.2
---
name: "log strings"
ioc_type: "yara"
indicator:
  files: "C:\\\\inetpub\\\\logs\\\\LogFiles\\\\W3SVC*\\\\*.log"
  rule: |
    rule x
    {
      strings:
        $post1= "POST /owa/auth/Current/"
        $post2= /POST \\/ecp\\/\\b\\w{1}\\b.js/
      condition:
        any of ($post*)
    }
---
name: "simple shell"
ioc_type: "yara"
indicator:
  files: "\\\\**"
  rule: |
    rule s
    {
    strings:
    $header= "<%@ Page Language=\\"C#\\" %>"
    $body= "Request.Files[0]"
    condition:
    $header at 0 and
    $body and
    filesize < 1KB
    }
---
name: "events"
ioc_type: "events"
indicator:
  event_type: "Application"
`;

test('CHIRP YAML: ips, log strings (any of) and content signatures (at 0, and, filesize)', () => {
  const s = parseIocFile(CHIRP, 'chirp.yaml');
  assert.deepEqual([...s.ips], ['192.0.2.1', '192.0.2.2']);
  assert.equal(s.logStrings.length, 1);
  assert.equal(s.logStrings[0]!.strings.length, 2);
  const re = s.logStrings[0]!.strings[1]!;
  assert.ok('regex' in re && re.regex.test('2021-03-03 07:00:00 10.0.0.5 POST /ecp/y.js - 443'));
  assert.equal(s.contentSignatures.length, 1);
  const sig = s.contentSignatures[0]!;
  const shell = '<%@ Page Language="C#" %><% var f = Request.Files[0]; %>';
  assert.equal(matchSignature(sig, shell, shell.length), true);
  assert.equal(matchSignature(sig, ` ${shell}`, shell.length + 1), false, 'header must be at offset 0');
  assert.equal(matchSignature(sig, shell, 5000), false, 'filesize < 1KB');
  assert.ok(s.warnings.some((w) => w.includes('events')));
});

test('the list type comes from the file\'s own name and the lines, never from parent folders (issue 6, finding 8)', () => {
  const names = 'web.aspx\nhelp.aspx\naspnet\\_client.aspx\n';
  const paths = 'C:\\inetpub\\wwwroot\\aspnet_client\\\n%PROGRAMFILES%\\Microsoft\\Exchange Server\\V15\\FrontEnd\\HttpProxy\\owa\\auth\\\n';
  // Folders named like hash, sha256, md5, ip, path or name lists (Windows and POSIX separators).
  for (const dir of ['/cases/hashes/', '/cases/sha256/', 'C:\\iocs\\md5\\', '/x/ip-lists/', '/x/paths/', '/x/names/']) {
    const n = parseIocFile(names, `${dir}scs-labs-hafnium-webshell_names.txt`);
    assert.deepEqual([...n.fileNames].sort(), ['aspnet_client.aspx', 'help.aspx', 'web.aspx'], dir);
    assert.equal(n.warnings.length, 0, `${dir}: ${n.warnings.join('; ')}`);
    const p = parseIocFile(paths, `${dir}scs-labs-hafnium-webshell_paths.txt`);
    assert.deepEqual(p.paths, ['inetpub/wwwroot/aspnet_client', 'frontend/httpproxy/owa/auth'], dir);
    assert.equal(p.warnings.length, 0, dir);
  }
  // A list whose name says "hashes" but holds IPs and names: read by the lines' shapes, and said so.
  const mixed = parseIocFile('203.0.113.9\nshell.aspx\nnot a thing at all\n', 'hashes.txt');
  assert.deepEqual([...mixed.ips], ['203.0.113.9']);
  assert.deepEqual([...mixed.fileNames], ['shell.aspx']);
  assert.equal(mixed.warnings.length, 1);
  assert.match(mixed.warnings[0]!, /fits no indicator type/);
  assert.match(mixed.understood[0]!, /hashes\.txt: 1 IP address\(es\), 1 file name\(s\); 1 line\(s\) fit no type and were skipped/);
  // No name hint: every line by its shape; a domain name is not a file name, and is reported.
  const plain = parseIocFile('198.51.100.4\nevil.example.com\npython-requests/2.25.1\n', 'case-7.txt');
  assert.deepEqual([...plain.ips], ['198.51.100.4']);
  assert.deepEqual(plain.userAgents, ['python-requests/2.25.1']);
  assert.equal(plain.fileNames.size, 0);
  assert.match(plain.warnings.join('\n'), /evil\.example\.com/);
});
