import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { OutputRequest, RuleRequest } from '../../src/rules/rule.js';
import { RuleError } from '../../src/rules/rule-error.js';
import { validateRule } from '../../src/rules/validate-rule.js';
import type { LinkState } from '../../src/supervisor/links.js';
import { choosePath, type XdpHostFacts, type XdpLinkFacts } from '../../src/supervisor/xdp-path-choice.js';

// Which path a rule takes, from the rule and the host's facts alone (no root, no kernel).

type Facts = LinkState & XdpLinkFacts;

function link(name: string, more: Partial<Facts> = {}): Facts {
  return {
    name,
    ifindex: 10,
    up: true,
    running: true,
    mtu: 1500,
    addresses: new Set([0x0a000001]),
    driver: 'mlx5_core',
    features: { native: true, ndoXmit: true },
    ...more,
  };
}

function host(links: Facts[], more: Partial<XdpHostFacts> = {}): XdpHostFacts {
  return {
    privilege: null,
    link: (name) => links.find((l) => l.name === name),
    attachFailure: () => undefined,
    ...more,
  };
}

function rule(outputs: OutputRequest[], more: Partial<RuleRequest> = {}) {
  return validateRule({ inputInterface: 'in0', inputGroup: '239.1.1.1', inputPort: 5000, outputs, ...more });
}

const out = (i: number, mode?: OutputRequest['mode']): OutputRequest => ({
  group: `239.2.2.${i + 1}`,
  port: 6000,
  interface: `out${i}`,
  ...(mode ? { mode } : {}),
});

const nics = [link('in0'), link('out0'), link('out1')];

test('auto takes XDP where every fact says it works', () => {
  assert.deepEqual(choosePath(rule([out(0), out(1)]), host(nics)), {
    path: 'xdp',
    forced: false,
    reason: null,
  });
});

test('auto stays on the worker path, with the reason, for each thing XDP cannot do', () => {
  const cases: [ReturnType<typeof rule>, XdpHostFacts, RegExp][] = [
    [rule([out(0), out(1, 'raw')]), host(nics), /outputs\[1\].*asks for the raw path/],
    [
      rule([out(0), { group: '10.0.0.9', port: 7000 }]),
      host(nics),
      /unicast outputs stay on the worker path/,
    ],
    [rule([out(0)], { rtp: true }), host(nics), /rtp/],
    [rule([out(0)], { inputSource: '10.1.1.1' }), host(nics), /source-specific/],
    [rule([out(0)]), host(nics, { privilege: 'mcrd lacks CAP_BPF' }), /CAP_BPF/],
    [
      rule([out(0)]),
      host([link('in0', { features: { native: false, ndoXmit: false }, driver: 'r8169' }), link('out0')]),
      /in0: driver r8169 has no native XDP/,
    ],
    [rule([out(0)]), host([link('in0', { features: undefined }), link('out0')]), /does not say/],
    [rule([out(0)]), host(nics, { attachFailure: () => 'in0 already has an XDP program' }), /already has/],
    [rule([out(0)]), host([link('in0'), link('out0', { driver: 'veth' })]), /auto keeps veth outputs/],
    [
      rule([out(0)]),
      host([link('in0'), link('out0', { driver: 'veth', features: { native: true, ndoXmit: false } })]),
      /peer has no NAPI/,
    ],
    [
      rule([out(0)]),
      host([link('in0'), link('out0', { driver: 'ixgbe', features: { native: true, ndoXmit: false } })]),
      /ixgbe does not take redirected frames/,
    ],
    [rule([out(0)]), host([link('in0', { mtu: 9000 }), link('out0')]), /MTU 1500 is below in0's 9000/],
    [rule([out(0)]), host([link('in0')]), /waiting for out0/],
  ];
  for (const [r, facts, reason] of cases) {
    const choice = choosePath(r, facts);
    assert.equal(choice.path, 'worker', String(reason));
    assert.equal(choice.forced, false);
    assert.match(choice.reason ?? '', reason);
  }
});

test('xdp forces the rule: it goes to a veth whose peer has NAPI, and waits for a missing output link', () => {
  const veth = [link('in0', { driver: 'veth' }), link('out0', { driver: 'veth' })];
  assert.deepEqual(choosePath(rule([out(0, 'xdp')]), host(veth)), {
    path: 'xdp',
    forced: true,
    reason: null,
  });
  assert.deepEqual(choosePath(rule([out(0, 'xdp'), out(1)]), host(veth)), {
    path: 'xdp',
    forced: true,
    reason: null,
  });
});

test('xdp is refused, with what is missing where, when a fact keeps the rule off', () => {
  const cases: [XdpHostFacts, RegExp][] = [
    [host(nics, { privilege: 'mcrd lacks CAP_BPF' }), /CAP_BPF/],
    [
      host([link('in0', { features: { native: false, ndoXmit: false }, driver: 'r8169' }), link('out0')]),
      /in0: driver r8169 has no native XDP/,
    ],
    [
      host([link('in0'), link('out0', { driver: 'veth', features: { native: true, ndoXmit: false } })]),
      /outputs\[0\] on out0: the veth's peer has no NAPI/,
    ],
    [
      host(nics, { attachFailure: () => 'in0: XDP could not be attached: in0 already has an XDP program' }),
      /already has/,
    ],
  ];
  for (const [facts, reason] of cases) {
    const choice = choosePath(rule([out(0, 'xdp')]), facts);
    assert.equal(choice.path, 'worker');
    assert.equal(choice.forced, true);
    assert.match(choice.reason ?? '', reason);
  }
});

test('a rule that asks for xdp where it cannot apply as written is refused at validation', () => {
  const refused = (outputs: OutputRequest[], more: Partial<RuleRequest> = {}): RuleError => {
    try {
      rule(outputs, more);
    } catch (err) {
      return err as RuleError;
    }
    assert.fail('accepted');
  };
  assert.equal(refused([{ group: '10.0.0.9', port: 7000, mode: 'xdp' }]).code, 'E_XDP_UNSUPPORTED');
  assert.match(refused([out(0, 'xdp'), out(1, 'socket')]).message, /outputs\[1\].*socket/);
  assert.match(refused([out(0, 'xdp')], { rtp: true }).message, /rtp/);
  assert.match(refused([out(0, 'xdp')], { inputSource: '10.1.1.1' }).message, /source-specific/);
  assert.equal(rule([out(0, 'xdp'), out(1)]).outputs[1]!.mode, 'auto');
});
