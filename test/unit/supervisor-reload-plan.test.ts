import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { OutputRequest } from '../../src/rules/rule.js';
import { RuleError } from '../../src/rules/rule-error.js';
import { validateRule } from '../../src/rules/validate-rule.js';
import { planReload, type RunningRule } from '../../src/supervisor/reload-plan.js';

const rule = (group: string, outputs: string[], name?: string) =>
  validateRule({
    ...(name ? { name } : {}),
    inputInterface: 'eth0',
    inputGroup: group,
    inputPort: 5000,
    outputs: outputs.map((o): OutputRequest => {
      const [g, port, iface, option] = o.split(':');
      return { group: g!, port: Number(port), interface: iface, ...(option ? { dscp: option } : {}) };
    }),
  });

const config = (r: ReturnType<typeof rule>): RunningRule => ({ rule: r, origin: 'config' });
const runtime = (r: ReturnType<typeof rule>): RunningRule => ({ rule: r, origin: 'runtime' });

test('an unchanged file changes nothing', () => {
  const a = rule('239.1.1.1', ['239.2.2.1:6000:eth1']);
  const plan = planReload([config(a)], [a], false);
  assert.deepEqual(plan, { add: [], remove: [], update: [], unchanged: [a.id] });
});

test('added rules start, config rules gone from the file stop, runtime rules stay unless replace', () => {
  const kept = rule('239.1.1.1', ['239.2.2.1:6000:eth1']);
  const dropped = rule('239.1.1.2', ['239.2.2.2:6000:eth1']);
  const added = rule('239.1.1.3', ['239.2.2.3:6000:eth1']);
  const manual = rule('239.1.1.4', ['239.2.2.4:6000:eth1']);
  const running = [config(kept), config(dropped), runtime(manual)];
  const plan = planReload(running, [kept, added], false);
  assert.deepEqual(plan.add, [added]);
  assert.deepEqual(plan.remove, [dropped]);
  assert.deepEqual(plan.unchanged, [kept.id]);
  assert.deepEqual(planReload(running, [kept, added], true).remove, [dropped, manual]);
});

test('a rule whose outputs change keeps the ones that stay, by index, and only those', () => {
  const before = rule('239.1.1.1', ['239.2.2.1:6000:eth1', '239.2.2.2:6000:eth1', '239.2.2.3:6000:eth2']);
  const after = rule('239.1.1.1', ['239.2.2.3:6000:eth2', '239.2.2.9:6000:eth1', '239.2.2.1:6000:eth1']);
  const [update] = planReload([config(before)], [after], false).update;
  assert.deepEqual(update, { rule: after, previous: [2, -1, 0], removedOutputs: 1, renameOnly: false });
});

test('an output whose options change is a new output', () => {
  const before = rule('239.1.1.1', ['239.2.2.1:6000:eth1', '239.2.2.2:6000:eth1']);
  const after = rule('239.1.1.1', ['239.2.2.1:6000:eth1', '239.2.2.2:6000:eth1:ef']);
  const [update] = planReload([config(before)], [after], false).update;
  assert.deepEqual(update!.previous, [0, -1]);
  assert.equal(update!.removedOutputs, 1);
});

test('a new name alone is a rename, with nothing for the workers', () => {
  const before = rule('239.1.1.1', ['239.2.2.1:6000:eth1'], 'old');
  const after = rule('239.1.1.1', ['239.2.2.1:6000:eth1'], 'new');
  const [update] = planReload([config(before)], [after], false).update;
  assert.equal(update!.renameOnly, true);
});

test('a runtime rule the file gives becomes a config rule; a runtime rule that keeps a name the file wants refuses the reload', () => {
  const manual = rule('239.1.1.1', ['239.2.2.1:6000:eth1'], 'cam');
  assert.deepEqual(planReload([runtime(manual)], [manual], false).unchanged, [manual.id]);
  const other = rule('239.1.1.2', ['239.2.2.2:6000:eth1'], 'cam');
  assert.throws(
    () => planReload([runtime(manual)], [other], false),
    (err: unknown) =>
      err instanceof RuleError && err.code === 'E_NAME_TAKEN' && /--replace/.test(err.message),
  );
  assert.doesNotThrow(() => planReload([runtime(manual)], [other], true));
});

test('turning rtp on or off is an update the workers apply, every output kept', () => {
  const off = rule('239.1.1.1', ['239.2.2.1:6000:eth1', '239.2.2.2:6000:eth2']);
  const on = { ...off, rtp: true };
  const plan = planReload([config(off)], [on], false);
  assert.deepEqual(plan.update, [{ rule: on, previous: [0, 1], removedOutputs: 0, renameOnly: false }]);
  assert.deepEqual(planReload([config(on)], [on], false).unchanged, [on.id]);
  assert.equal(planReload([config(on)], [off], false).update[0]!.renameOnly, false);
});
