import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  ipv4RangeToString,
  ipv4ToString,
  isMulticastIpv4,
  offsetIpv4,
  parseIpv4,
} from '../../src/packet/ipv4-address.js';

test('parseIpv4 accepts strict dotted quads as unsigned numbers', () => {
  assert.equal(parseIpv4('239.1.1.1'), 0xef010101);
  assert.equal(parseIpv4('0.0.0.0'), 0);
  assert.equal(parseIpv4('255.255.255.255'), 0xffffffff);
  assert.equal(parseIpv4('10.0.0.1'), 0x0a000001);
  assert.equal(parseIpv4('100.200.10.0'), 0x64c80a00);
  assert.ok(parseIpv4('224.0.0.1')! > 0, 'unsigned, not negative');
});

test('parseIpv4 rejects everything else', () => {
  for (const s of [
    '256.1.1.1',
    '1.2.3.256',
    '1.2.3',
    '1.2.3.4.5',
    '01.2.3.4',
    '1.2.3.00',
    '1.2.3.0x1',
    ' 1.2.3.4',
    '1.2.3.4 ',
    '1.2.3.4\n',
    '1..3.4',
    '.1.2.3',
    '1.2.3.',
    '1.2.3.4.',
    '+1.2.3.4',
    '-1.2.3.4',
    '1.2.3.1000',
    '1234.1.1.1',
    '1.2.3.٤', // Arabic-Indic digit: not ASCII
    '',
    '....',
    'a.b.c.d',
    '1.2.3.4/32',
  ]) {
    assert.equal(parseIpv4(s), undefined, JSON.stringify(s));
  }
});

test('ipv4ToString formats and round-trips', () => {
  assert.equal(ipv4ToString(0xef010101), '239.1.1.1');
  assert.equal(ipv4ToString(0), '0.0.0.0');
  assert.equal(ipv4ToString(0xffffffff), '255.255.255.255');
  assert.equal(ipv4ToString(-1), '255.255.255.255'); // signed form of the same bits
  for (const n of [1, 0x7fffffff, 0x80000000, 0xe0000001, 0xc0a80001, 0x01020304]) {
    assert.equal(parseIpv4(ipv4ToString(n)), n);
  }
});

test('isMulticastIpv4 is 224.0.0.0/4', () => {
  assert.equal(isMulticastIpv4(parseIpv4('224.0.0.0')!), true);
  assert.equal(isMulticastIpv4(parseIpv4('239.255.255.255')!), true);
  assert.equal(isMulticastIpv4(parseIpv4('223.255.255.255')!), false);
  assert.equal(isMulticastIpv4(parseIpv4('240.0.0.0')!), false);
  assert.equal(isMulticastIpv4(0), false);
  assert.equal(isMulticastIpv4(0xe0000000 | 0), true); // signed form of 224.0.0.0
});

test('offsetIpv4 counts as a 32-bit number, carrying across octets', () => {
  assert.equal(offsetIpv4(parseIpv4('239.1.1.1')!, 0), parseIpv4('239.1.1.1'));
  assert.equal(offsetIpv4(parseIpv4('239.1.1.1')!, 99), parseIpv4('239.1.1.100'));
  assert.equal(offsetIpv4(parseIpv4('239.1.1.255')!, 1), parseIpv4('239.1.2.0'));
  assert.equal(offsetIpv4(parseIpv4('239.1.255.255')!, 2), parseIpv4('239.2.0.1'));
  assert.equal(offsetIpv4(parseIpv4('239.255.255.255')!, 1), parseIpv4('240.0.0.0'));
  assert.equal(offsetIpv4(parseIpv4('223.255.255.255')!, 1), parseIpv4('224.0.0.0'));
  assert.equal(offsetIpv4(parseIpv4('239.1.2.0')!, -1), parseIpv4('239.1.1.255'));
  assert.equal(offsetIpv4(-1, 0), 0xffffffff, 'signed input read as unsigned');
  assert.equal(offsetIpv4(0xfffffffe, 1), 0xffffffff);
  assert.equal(offsetIpv4(0xffffffff, 1), undefined, 'no wrap past 255.255.255.255');
  assert.equal(offsetIpv4(0, -1), undefined, 'no wrap below 0.0.0.0');
  assert.equal(offsetIpv4(1, 0.5), undefined);
});

test('ipv4RangeToString', () => {
  assert.equal(ipv4RangeToString(parseIpv4('239.1.1.1')!, 100), '239.1.1.1-239.1.1.100');
  assert.equal(ipv4RangeToString(parseIpv4('239.1.1.250')!, 10), '239.1.1.250-239.1.2.3');
  assert.equal(ipv4RangeToString(parseIpv4('239.1.1.1')!, 1), '239.1.1.1');
});
