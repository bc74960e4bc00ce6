import { test } from 'node:test';
import assert from 'node:assert/strict';

import { accountSharing, lookupAccount, type AccountEntry } from '../../src/sys/privileges.js';

// Which accounts workers may run as: never root or mcrd's own; nobody and accounts people log in
// as are shared by others, who could signal the workers.

const account = (fields: Partial<AccountEntry>): AccountEntry => ({
  name: 'mcr',
  uid: 999,
  gid: 995,
  home: '/nonexistent',
  shell: '/usr/sbin/nologin',
  ...fields,
});

test('a system account of its own is fine; root, mcrd’s own, nobody and login accounts are not', () => {
  const supervisor = [0, 0];
  assert.equal(accountSharing(account({}), supervisor, 65534), undefined);
  assert.equal(accountSharing(account({ shell: '/bin/false' }), supervisor, 65534), undefined);
  assert.equal(accountSharing(account({ uid: 0 }), supervisor, 65534), 'root');
  assert.equal(accountSharing(account({ gid: 0 }), supervisor, 65534), 'root');
  assert.equal(
    accountSharing(account({}), [999, 999], 65534),
    'supervisor',
    'a service account mcrd runs as',
  );
  assert.equal(accountSharing(account({ name: 'nobody', uid: 65534 }), supervisor, 65534), 'overflow');
  assert.equal(accountSharing(account({ name: 'nfsnobody' }), supervisor, 999), 'overflow', 'by uid');
  assert.equal(
    accountSharing(account({ name: 'nobody', uid: 4242 }), supervisor, 65534),
    'overflow',
    'by name',
  );
  assert.equal(accountSharing(account({ shell: '/bin/bash' }), supervisor, 65534), 'login');
  assert.equal(accountSharing(account({ shell: '' }), supervisor, 65534), 'login', 'empty means /bin/sh');
});

test('lookupAccount reads uid, gid, home and shell through the C library', () => {
  const root = lookupAccount('root');
  assert.ok(root);
  assert.deepEqual([root.uid, root.gid], [0, 0]);
  assert.match(root.home, /^\//);
  assert.match(root.shell, /^\//);
  assert.equal(lookupAccount('no-such-account-mcr-test'), undefined);
});
