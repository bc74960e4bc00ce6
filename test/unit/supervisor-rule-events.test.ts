import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import type { McrEvent } from '../../src/protocol/control-api.js';
import { validateRule } from '../../src/rules/validate-rule.js';
import { EventBus } from '../../src/supervisor/event-bus.js';
import type { RuleActivationView } from '../../src/supervisor/rule-state.js';
import {
  clientCause,
  describeCause,
  linkCause,
  RuleEvents,
  signalCause,
} from '../../src/supervisor/rule-events.js';
import type { StoredRule } from '../../src/supervisor/rule-store.js';

// Rule changes as events, with who made them; rule states published when they move, caused by
// the change during which they moved.

function setup() {
  const bus = new EventBus(pino({ level: 'silent' }));
  const events: McrEvent[] = [];
  bus.subscribe(
    { id: 1, push: ({ event }) => events.push(event) > 0, whenEnded: () => undefined, end: () => undefined },
    {},
  );
  const table = new Map<string, StoredRule>();
  const views = new Map<string, RuleActivationView>();
  const looked: string[] = [];
  const rules = new RuleEvents({
    bus,
    rules: () => [...table.values()],
    view: (id) => {
      looked.push(id);
      return views.get(id)!;
    },
  });
  const add = (
    name: string,
    port: number,
    origin: 'config' | 'runtime',
    state: RuleActivationView,
  ): StoredRule => {
    const rule = validateRule({
      name,
      inputInterface: 'in0',
      inputGroup: '239.1.1.1',
      inputPort: port,
      outputs: [
        { group: '239.2.2.2', port: 6000, interface: 'out0' },
        { group: '239.2.2.3', port: 6000, interface: 'out1' },
      ],
    });
    const stored: StoredRule = { rule, origin, createdAt: new Date() };
    table.set(rule.id, stored);
    views.set(rule.id, state);
    rules.ruleAdded(stored);
    return stored;
  };
  return { rules, events, table, views, add, looked };
}

const active: RuleActivationView = {
  path: null,
  pathReason: null,
  state: 'active',
  reason: null,
  outputs: [],
};
const client = { id: 3, pid: 4242, uid: 0 };

test('a rule added by a control client names the client by pid and uid, and what the rule is', () => {
  const { rules, events, add } = setup();
  const stored = rules.because(clientCause('control-client', client), () =>
    add('video', 5000, 'runtime', active),
  );
  assert.equal(events.length, 1);
  const [added] = events;
  assert.equal(added!.type, 'rule.added');
  assert.deepEqual(added!.cause, {
    by: 'control-client',
    source: null,
    client,
    signal: null,
    interface: null,
  });
  assert.deepEqual(added!.rule, {
    id: stored.rule.id,
    name: 'video',
    input: 'in0 239.1.1.1:5000',
    outputs: ['239.2.2.2:6000:out0', '239.2.2.3:6000:out1'],
    origin: 'runtime',
    rtp: false,
    state: 'active',
    reason: null,
    previousState: null,
  });
  assert.equal(
    added!.message,
    `${stored.rule.id} (video) by control client pid 4242 uid 0: in0 239.1.1.1:5000 -> 2 outputs, active`,
  );
});

test('at start, config rules come from the config file and runtime rules from the state file', () => {
  const { rules, events, add } = setup();
  rules.atStart('/etc/mcr/mcr.json5', '/var/lib/mcr', () => {
    add('a', 5000, 'config', active);
    add('b', 5001, 'runtime', active);
  });
  assert.deepEqual(
    events.map((e) => [e.cause?.by, e.cause?.source]),
    [
      ['config-start', '/etc/mcr/mcr.json5'],
      ['state-file', '/var/lib/mcr/runtime-rules.json5'],
    ],
  );
  assert.match(events[1]!.message, /by state file \/var\/lib\/mcr\/runtime-rules\.json5 at start:/);
});

test('a state that moves during a change is published once the change is done, with its cause; a reason alone moving counts', () => {
  const { rules, events, views, add } = setup();
  const stored = rules.because(signalCause('SIGHUP', '/etc/mcr/mcr.json5'), () =>
    add('video', 5000, 'config', active),
  );
  const id = stored.rule.id;
  rules.because(linkCause('out1'), () => {
    views.set(id, { path: null, pathReason: null, state: 'degraded', reason: 'out1 is down', outputs: [] });
    // Nested changes are part of the outer one: no state published yet.
    rules.because(linkCause('out0'), () => undefined);
    assert.equal(events.length, 1);
  });
  assert.equal(events.length, 2);
  const moved = events[1]!;
  assert.equal(moved.type, 'rule.state');
  assert.deepEqual(
    [
      moved.rule?.previousState,
      moved.rule?.state,
      moved.rule?.reason,
      moved.cause?.by,
      moved.cause?.interface,
    ],
    ['active', 'degraded', 'out1 is down', 'link-change', 'out1'],
  );
  assert.equal(moved.message, `${id} (video) active -> degraded (out1 is down) after a change of out1`);
  // Nothing moved: nothing published.
  rules.because(linkCause('out1'), () => undefined);
  assert.equal(events.length, 2);
  // Only the reason moved.
  rules.because(linkCause('out0'), () =>
    views.set(id, {
      path: null,
      pathReason: null,
      state: 'degraded',
      reason: 'out0 is down; out1 is down',
      outputs: [],
    }),
  );
  assert.equal(events.length, 3);
  assert.equal(events[2]!.rule?.previousState, 'degraded');
  assert.equal(
    events[2]!.message,
    `${id} (video) still degraded (out0 is down; out1 is down) after a change of out0`,
  );
});

test('removed and updated rules carry their cause; a removed rule says the state it was in and is forgotten', () => {
  const { rules, events, table, views, add } = setup();
  const stored = add('video', 5000, 'config', {
    path: null,
    pathReason: null,
    state: 'down',
    reason: 'in0 is down',
    outputs: [],
  });
  const reload = clientCause('config-reload', client, '/etc/mcr/mcr.json5');
  rules.because(reload, () => {
    rules.ruleUpdated(stored, false);
    table.delete(stored.rule.id);
    views.delete(stored.rule.id);
    rules.ruleRemoved(stored);
  });
  assert.deepEqual(
    events.map((e) => e.type),
    ['rule.added', 'rule.updated', 'rule.removed'],
  );
  assert.deepEqual(events[2]!.cause, reload);
  assert.equal(events[2]!.rule?.state, 'down');
  assert.match(
    events[1]!.message,
    /by config reload of \/etc\/mcr\/mcr\.json5 by control client pid 4242 uid 0: outputs or options changed, now 239\.2\.2\.2:6000:out0, 239\.2\.2\.3:6000:out1$/,
  );
});

test('a config applied says what it changed and who asked', () => {
  const { rules, events } = setup();
  rules.because(clientCause('config-load', { id: 9, pid: null, uid: null }, 'new.json5'), () =>
    rules.configApplied({
      source: 'new.json5',
      added: ['r-1'],
      removed: [],
      updated: ['r-2', 'r-3'],
      unchanged: 4,
      warnings: [],
      needsRestart: ['workers 2 → 4'],
    }),
  );
  assert.deepEqual(events[0]!.config, {
    added: ['r-1'],
    removed: [],
    updated: ['r-2', 'r-3'],
    unchanged: 4,
    needsRestart: ['workers 2 → 4'],
  });
  assert.equal(
    events[0]!.message,
    'config applied by config load of new.json5 by control client 9: 1 added, 0 removed, 2 updated, 4 unchanged; needs a restart of mcrd: workers 2 → 4',
  );
});

test('a rule added or removed by a client looks at no other rule: adding rule after rule stays linear; a link change looks at them all', () => {
  const { rules, add, looked, table } = setup();
  const first = rules.because(clientCause('control-client', client), () => add('a', 5000, 'runtime', active));
  looked.length = 0;
  const second = rules.because(clientCause('control-client', client), () =>
    add('b', 5001, 'runtime', active),
  );
  assert.deepEqual(new Set(looked), new Set([second.rule.id]));
  looked.length = 0;
  rules.because(clientCause('control-client', client), () => {
    table.delete(first.rule.id);
    rules.ruleRemoved(first);
  });
  assert.deepEqual(looked, []);
  rules.because(linkCause('out0'), () => undefined);
  assert.deepEqual(looked, [second.rule.id]);
});

test('causes in words', () => {
  assert.equal(
    describeCause(signalCause('SIGHUP', '/etc/mcr/mcr.json5')),
    'config reload of /etc/mcr/mcr.json5 (SIGHUP)',
  );
  assert.equal(
    describeCause(clientCause('control-client', { id: 2, pid: null, uid: null })),
    'control client 2',
  );
  assert.equal(describeCause(linkCause('eth1')), 'a change of eth1');
  assert.equal(describeCause(null), 'mcrd');
});
