import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

import type { InterfaceEvent } from '../../src/sys/netlink.js';

// The watcher must run inside a fresh network namespace, which this process cannot enter, so a
// small child runs there (`ip netns exec`), follows a plan of ip commands and prints what it saw.

const isRoot = process.getuid?.() === 0;
const hasIp = spawnSync('ip', ['-V']).status === 0;
const skip = !isRoot ? 'needs root' : !hasIp ? 'needs iproute2' : false;

const watcherUrl = new URL('../../src/sys/netlink.js', import.meta.url).href;

interface Step {
  name: string;
  /** ip arguments; 'dump' asks the watcher for a full dump instead. */
  action: string[] | 'dump';
  /** Wait until an event with these fields has arrived (or the step times out). */
  until: Record<string, unknown>;
}

interface Seen {
  step: string;
  event: InterfaceEvent;
}

const CHILD = `
import { openInterfaceEvents } from ${JSON.stringify(watcherUrl)};
import { execFileSync } from 'node:child_process';
const plan = JSON.parse(process.env.MCR_NETLINK_PLAN);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const source = openInterfaceEvents();
const matches = (event, want) => Object.entries(want).every(([k, v]) => event[k] === v);
for (const step of plan) {
  if (step.action === 'dump') source.requestDump();
  else execFileSync('ip', step.action, { stdio: ['ignore', 'ignore', 'inherit'] });
  const deadline = Date.now() + 1500;
  let done = false;
  while (!done && Date.now() < deadline) {
    for (const event of source.read()) {
      console.log(JSON.stringify({ step: step.name, event }));
      if (matches(event, step.until)) done = true;
    }
    if (!done) Atomics.wait(sleeper, 0, 0, 5);
  }
  // Whatever else the same change produced arrives together with it.
  Atomics.wait(sleeper, 0, 0, 20);
  for (const event of source.read()) console.log(JSON.stringify({ step: step.name, event }));
}
source.close();
`;

function ip(...args: string[]): { ok: boolean; stderr: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 2000 });
  return { ok: r.status === 0, stderr: r.stderr };
}

test('rtnetlink reports a link being added, brought up, addressed, taken down and deleted', { skip }, (t) => {
  const ns = `mcrnl${process.pid}`;
  if (!ip('netns', 'add', ns).ok) {
    t.skip('cannot create a network namespace here');
    return;
  }
  try {
    assert.ok(ip('-n', ns, 'link', 'set', 'lo', 'up').ok);
    // Some kernels are built without the dummy driver; a veth pair (peer up) behaves the same here.
    const dummy = ip('-n', ns, 'link', 'add', 'mcrnlprobe', 'type', 'dummy').ok;
    if (dummy) ip('-n', ns, 'link', 'del', 'mcrnlprobe');
    const link = 'mcrnl0';
    const plan: Step[] = [
      { name: 'dump', action: 'dump', until: { kind: 'dump-done' } },
      {
        name: 'add',
        action: dummy
          ? ['link', 'add', link, 'type', 'dummy']
          : ['link', 'add', link, 'type', 'veth', 'peer', 'name', 'mcrnl1'],
        until: { kind: 'link', name: link },
      },
      ...(dummy
        ? []
        : [{ name: 'peer', action: ['link', 'set', 'mcrnl1', 'up'], until: { name: 'mcrnl1', up: true } }]),
      { name: 'up', action: ['link', 'set', link, 'up'], until: { name: link, up: true, running: true } },
      {
        name: 'addr',
        action: ['addr', 'add', '10.55.0.1/24', 'dev', link],
        until: { kind: 'address', address: 0x0a370001 },
      },
      { name: 'redump', action: 'dump', until: { kind: 'dump-done' } },
      { name: 'down', action: ['link', 'set', link, 'down'], until: { name: link, up: false } },
      { name: 'del', action: ['link', 'del', link], until: { name: link, deleted: true } },
    ];
    const child = spawnSync(
      'ip',
      ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', CHILD],
      {
        encoding: 'utf8',
        timeout: 4500,
        env: { ...process.env, MCR_NETLINK_PLAN: JSON.stringify(plan) },
      },
    );
    assert.equal(child.status, 0, `child failed: ${child.stderr}`);
    const seen: Seen[] = child.stdout
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as Seen);
    const inStep = (step: string): InterfaceEvent[] =>
      seen.filter((s) => s.step === step).map((s) => s.event);
    const linkEvents = (step: string) =>
      inStep(step).filter((e) => e.kind === 'link' && e.name === link) as Extract<
        InterfaceEvent,
        { kind: 'link' }
      >[];

    assert.ok(!seen.some((s) => s.event.kind === 'overflow'), 'no overflow');

    const dump = inStep('dump');
    assert.deepEqual(dump.at(-1), { kind: 'dump-done' });
    assert.ok(
      dump.some((e) => e.kind === 'link' && e.ifindex === 1 && e.name === 'lo' && e.mtu === 65536 && e.up),
      'the dump lists lo',
    );
    assert.ok(
      dump.some(
        (e) => e.kind === 'address' && e.ifindex === 1 && e.address === 0x7f000001 && e.prefixLength === 8,
      ),
      'the dump lists 127.0.0.1/8',
    );

    const added = linkEvents('add');
    assert.ok(added.length > 0, 'the new link is reported');
    const first = added[0]!;
    assert.equal(first.deleted, false);
    assert.equal(first.up, false);
    assert.equal(first.mtu, 1500);
    assert.match(first.mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    const ifindex = first.ifindex;

    const up = linkEvents('up');
    assert.ok(
      up.some((e) => e.up && e.running && e.ifindex === ifindex),
      'the link is reported up and running',
    );

    const address = inStep('addr').find((e) => e.kind === 'address');
    assert.deepEqual(address, {
      kind: 'address',
      ifindex,
      address: 0x0a370001,
      prefixLength: 24,
      deleted: false,
    });

    const redump = inStep('redump');
    assert.deepEqual(redump.at(-1), { kind: 'dump-done' });
    assert.ok(redump.some((e) => e.kind === 'link' && e.ifindex === ifindex && e.up && !e.deleted));
    assert.ok(redump.some((e) => e.kind === 'address' && e.ifindex === ifindex && e.address === 0x0a370001));

    const down = linkEvents('down');
    assert.ok(down.length > 0 && down.every((e) => !e.up && !e.running && !e.deleted), 'the link goes down');

    const deleted = inStep('del');
    assert.ok(
      deleted.some(
        (e) => e.kind === 'address' && e.ifindex === ifindex && e.address === 0x0a370001 && e.deleted,
      ),
      'its address is removed',
    );
    const gone = linkEvents('del').at(-1);
    assert.ok(gone?.deleted, 'the link is deleted');
    assert.equal(gone.ifindex, ifindex);
  } finally {
    ip('netns', 'del', ns);
  }
});
