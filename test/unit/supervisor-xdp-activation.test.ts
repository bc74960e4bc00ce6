import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { emptyRuleCounters } from '../../src/protocol/counters.js';
import { XdpPaths, type XdpInputPort, type XdpSystem } from '../../src/supervisor/xdp-activation.js';
import type { XdpOutput, XdpRuleCounters } from '../../src/xdp/xdp-input.js';
import type { RuleKey } from '../../src/xdp/xdp-maps.js';
import { rule, setup, type FakeLinks } from './activation-fakes.js';

// Rule activation with the XDP path, against a fake XdpInput: which rules go there, what the
// maps get, what the workers get (the input, never the rule), refusals and fallbacks, counts.

class FakeInput implements XdpInputPort {
  readonly rules = new Map<string, XdpOutput[]>();
  closed = false;
  packets = 0;
  setRules = 0;

  constructor(readonly ifindex: number) {}

  programId(): number {
    return 7;
  }
  setRule(key: RuleKey, outputs: readonly XdpOutput[]): void {
    this.setRules++;
    this.rules.set(`${key.group}:${key.port}`, [...outputs]);
  }
  removeRule(key: RuleKey): XdpRuleCounters | undefined {
    const outputs = this.rules.get(`${key.group}:${key.port}`);
    this.rules.delete(`${key.group}:${key.port}`);
    return outputs && this.countersOf(key, outputs);
  }
  setHostAddresses(): void {}
  readCounters(): XdpRuleCounters[] {
    return [...this.rules.entries()].map(([text, outputs]) => {
      const [group, port] = text.split(':').map(Number) as [number, number];
      return this.countersOf({ group, port, vlan: 0 }, outputs);
    });
  }
  close(): void {
    this.closed = true;
  }
  private countersOf(key: RuleKey, outputs: XdpOutput[]): XdpRuleCounters {
    const counts = {
      packets: this.packets,
      bytes: this.packets * 10,
      ownSource: 0,
      ttlExpired: 0,
      noOutput: 0,
    };
    return {
      key,
      counts,
      outputs: outputs.map((o) => ({
        id: o.id,
        counts: {
          packets: this.packets,
          bytes: this.packets * 10,
          ttlExpired: 0,
          refused: 0,
          refusedBytes: 0,
        },
      })),
    };
  }
}

class FakeXdp implements XdpSystem {
  privilege: string | null = null;
  driver = 'mlx5_core';
  attachError: string | undefined;
  readonly opened: FakeInput[] = [];

  open(ifindex: number): XdpInputPort {
    if (this.attachError) throw new Error(this.attachError);
    const input = new FakeInput(ifindex);
    this.opened.push(input);
    return input;
  }
  linkFacts() {
    return { driver: this.driver, features: { native: true, ndoXmit: true } };
  }
  source() {
    return { mac: new Uint8Array([2, 0, 0, 0, 0, 1]), address: 0x0a000001 };
  }
  localPort(fd: number): number {
    return 40000 + fd;
  }
}

function xdpSetup() {
  const system = new FakeXdp();
  const fixture = setup(2, (links: FakeLinks) => new XdpPaths(system, links, pino({ level: 'silent' })));
  for (const name of ['in0', 'out0', 'out1']) fixture.links.add(name);
  return { ...fixture, system };
}

const two = [
  { group: '239.2.2.2', port: 6000, interface: 'out0' },
  { group: '239.2.2.3', port: 6000, interface: 'out1' },
];

test('auto on links that take redirected frames: the rule goes to XDP; the workers get its input, not the rule', () => {
  const { activation, workers, system } = xdpSetup();
  const r = rule({ outputs: two });
  activation.add(r);
  const view = activation.view(r.id);
  assert.equal(view.path, 'xdp');
  assert.deepEqual(
    view.outputs.map((o) => o.path),
    ['xdp', 'xdp'],
  );
  assert.equal(workers.take('rule.add').length, 0);
  assert.equal(system.opened.length, 1);
  const outputs = system.opened[0]!.rules.get(`${r.inputGroup}:${r.inputPort}`)!;
  assert.deepEqual(
    outputs.map((o) => [o.ifindex, o.sourceAddress, o.group]),
    [
      [11, 0x0a000001, r.outputs[0]!.group],
      [12, 0x0a000001, r.outputs[1]!.group],
    ],
  );
  assert.ok(outputs.every((o) => o.sourcePort > 40000));
  assert.equal(activation.expectedHash(), setup().activation.expectedHash(), 'workers hold no rule');
});

test('auto falls back to the worker path when attaching fails (another program), with the reason', () => {
  const { activation, workers, system } = xdpSetup();
  system.attachError = 'in0 already has an XDP program; mcr leaves another program attached';
  const r = rule({ outputs: two });
  activation.add(r);
  const view = activation.view(r.id);
  assert.equal(view.path, 'worker');
  assert.match(view.pathReason ?? '', /already has an XDP program/);
  assert.deepEqual(
    view.outputs.map((o) => o.path),
    ['raw', 'raw'],
  );
  assert.equal(workers.take('rule.add').length, 2);
});

test('forced xdp that cannot apply: an operator add is refused, a config rule waits with the reason', () => {
  const { activation, system, sockets } = xdpSetup();
  system.attachError = 'in0 already has an XDP program';
  const forced = rule({ outputs: [{ ...two[0]!, mode: 'xdp' }] });
  assert.throws(() => activation.add(forced), {
    code: 'E_XDP_UNAVAILABLE',
    message: /already has an XDP program/,
  });
  assert.equal(sockets.open.size, 0);
  activation.add(forced, false);
  const view = activation.view(forced.id);
  assert.equal(view.state, 'waiting');
  assert.match(view.reason ?? '', /xdp cannot apply.*already has an XDP program/);
});

test('without CAP_BPF auto stays on the worker path and xdp is refused', () => {
  const { activation, system } = xdpSetup();
  system.privilege = 'mcrd lacks CAP_BPF, which loading XDP programs needs';
  const auto = rule({ outputs: two });
  activation.add(auto);
  assert.equal(activation.view(auto.id).path, 'worker');
  assert.match(activation.view(auto.id).pathReason ?? '', /CAP_BPF/);
  const forced = rule({ inputPort: 5001, outputs: [{ ...two[0]!, mode: 'xdp' }] });
  assert.throws(() => activation.add(forced), { code: 'E_XDP_UNAVAILABLE', message: /CAP_BPF/ });
});

test('an update is one setRule that keeps the outputs that stay; counts never go backwards', () => {
  const { activation, workers, system } = xdpSetup();
  const r = rule({ outputs: two });
  activation.add(r);
  const input = system.opened[0]!;
  const ids = input.rules.get(`${r.inputGroup}:${r.inputPort}`)!.map((o) => o.id);
  input.packets = 10;
  assert.equal(activation.mergeXdp(r.id, emptyRuleCounters(2)).packetsIn, 10);
  workers.take();
  const updated = rule({ outputs: [two[1]!] });
  activation.update(updated, [1]);
  assert.equal(input.setRules, 2);
  assert.deepEqual(
    input.rules.get(`${r.inputGroup}:${r.inputPort}`)!.map((o) => o.id),
    [ids[1]],
  );
  assert.equal(workers.take().length, 0, 'the workers hear nothing of an XDP rule');
  activation.remove(r.id);
  assert.equal(input.closed, true, 'the last XDP rule of an input closes its XdpInput');
});

test('an output link that goes leaves the maps; the rule stays on XDP; its return puts it back', () => {
  const { activation, links, system } = xdpSetup();
  const r = rule({
    outputs: [
      { ...two[0]!, mode: 'xdp' },
      { ...two[1]!, mode: 'xdp' },
    ],
  });
  activation.add(r);
  const input = system.opened[0]!;
  const key = `${r.inputGroup}:${r.inputPort}`;
  links.links.delete('out1');
  activation.linkChanged('out1', 'vanished');
  assert.equal(activation.view(r.id).path, 'xdp');
  assert.equal(input.rules.get(key)!.length, 1);
  assert.equal(activation.view(r.id).outputs[1]!.state, 'waiting');
  links.add('out1');
  activation.linkChanged('out1', 'appeared');
  assert.equal(input.rules.get(key)!.length, 2);
  activation.close();
  assert.equal(input.closed, true);
});

test('a reload that forces xdp moves a rule from the workers to XDP whole, and back', () => {
  const { activation, workers, system } = xdpSetup();
  system.driver = 'veth';
  const auto = rule({ outputs: two });
  activation.add(auto);
  assert.equal(activation.view(auto.id).path, 'worker');
  assert.match(activation.view(auto.id).pathReason ?? '', /auto keeps veth outputs/);
  workers.take();
  const forced = rule({ outputs: two.map((o) => ({ ...o, mode: 'xdp' as const })) });
  activation.update(forced, [0, 1]);
  assert.equal(activation.view(auto.id).path, 'xdp');
  assert.equal(workers.take('rule.remove').length, 2, 'the workers let the rule go');
  assert.equal(system.opened[0]!.rules.size, 1);
  activation.update(auto, [0, 1]);
  assert.equal(activation.view(auto.id).path, 'worker');
  assert.equal(workers.take('rule.add').length, 2, 'the workers hold it again');
  assert.equal(system.opened[0]!.closed, true, 'its input had no other XDP rule');
});

test('an input whose sockets cannot be opened leaves no program attached', () => {
  const { activation, sockets, system } = xdpSetup();
  sockets.failingInputs.add('in0');
  assert.throws(() => activation.add(rule({ outputs: two })), /cannot open in0/);
  assert.equal(system.opened[0]!.closed, true);
});
