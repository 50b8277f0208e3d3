import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { passwdEntry } from '../src/platform/db/os.js';

// Startup cost: the postgres user's ids come from /etc/passwd instead of two `id` child processes.
test('passwdEntry reads uid and primary gid of a user from passwd(5) text', () => {
  const text = 'root:x:0:0:root:/root:/bin/bash\npostgres:x:101:103::/nonexistent:/usr/sbin/nologin\n';
  assert.deepEqual(passwdEntry(text, 'postgres'), { uid: 101, gid: 103 });
  assert.deepEqual(passwdEntry(text, 'root'), { uid: 0, gid: 0 });
  assert.equal(passwdEntry(text, 'postgre'), null);
  assert.equal(passwdEntry(text, 'nobody'), null);
  assert.equal(passwdEntry('postgres:x:abc:1::/:/bin/false\n', 'postgres'), null, 'a malformed line is not trusted');
  assert.equal(passwdEntry('', 'postgres'), null);
});

test('passwdEntry agrees with `id` for the users of this machine', () => {
  const text = readFileSync('/etc/passwd', 'latin1');
  for (const name of ['root', 'postgres']) {
    let uid: number;
    let gid: number;
    try {
      uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    } catch {
      continue; // not on this machine
    }
    const e = passwdEntry(text, name);
    if (e !== null) assert.deepEqual(e, { uid, gid }, name);
  }
});
