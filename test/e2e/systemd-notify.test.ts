import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { WorkerView } from '../../src/protocol/control-api.js';
import { waitFor } from '../helpers/processes.js';
import { RelayHost } from '../helpers/relay-host.js';
import { Topology } from '../helpers/topology.js';

// Under systemd (Type=notify) mcrd says when it is ready, reloading and stopping on
// $NOTIFY_SOCKET; socat stands in for systemd and prints every datagram it gets. The workers
// must not be able to speak for the service: the variable is not in their environment.

function environmentOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
}

test('mcrd tells systemd READY, RELOADING then READY on each reload, and STOPPING; workers never see NOTIFY_SOCKET', async () => {
  const topo = new Topology();
  try {
    const notifySocket = join(topo.dir, 'notify.sock');
    const systemd = topo.start(topo.relay, 'socat', ['-u', `UNIX-RECV:${notifySocket}`, 'STDOUT']);
    await waitFor('the stand-in notify socket', () => existsSync(notifySocket) || undefined);
    const config = join(topo.dir, 'mcr.json5');
    writeFileSync(
      config,
      "{ workers: 2, rules: [{ input: { interface: 'in0', group: '239.1.1.1', port: 5000 }, outputs: [{ group: '239.2.2.2', port: 6000, interface: 'out0' }] }] }\n",
    );
    const relay = await RelayHost.start(topo, ['--config', config], ['env', `NOTIFY_SOCKET=${notifySocket}`]);
    const said = (text: string, times = 1): Promise<true> =>
      waitFor(`"${text}" ×${times} on the notify socket (so far: ${JSON.stringify(systemd.stdout)})`, () =>
        systemd.stdout.split(text).length - 1 >= times ? true : undefined,
      );
    await said('READY=1');
    assert.match(systemd.stdout, /STATUS=serving 1 rules/);

    const daemonPid = relay.daemon.child.pid!;
    assert.ok(environmentOf(daemonPid).includes(`NOTIFY_SOCKET=${notifySocket}`));
    const workers = relay.mcrctlJson<{ workers: WorkerView[] }>(['workers']).workers;
    assert.equal(workers.length, 2);
    for (const w of workers) {
      assert.ok(w.pid !== null);
      const env = environmentOf(w.pid);
      assert.equal(
        env.find((v) => v.startsWith('NOTIFY_SOCKET=')),
        undefined,
        `worker ${w.id} has no NOTIFY_SOCKET`,
      );
    }

    process.kill(daemonPid, 'SIGHUP');
    await said('RELOADING=1');
    await said('READY=1', 2);
    assert.equal(relay.mcrctl(['config', 'reload']).code, 0);
    await said('RELOADING=1', 2);
    await said('READY=1', 3);

    await relay.stop();
    await said('STOPPING=1');
    assert.ok(
      systemd.stdout.indexOf('STOPPING=1') > systemd.stdout.lastIndexOf('READY=1'),
      'STOPPING comes last',
    );
  } finally {
    topo.destroy();
  }
});
