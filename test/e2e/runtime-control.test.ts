import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClientError, ControlClient } from '../../src/protocol/control-client.js';
import { PROTOCOL_VERSION } from '../../src/protocol/json-rpc.js';
import { waitFor } from '../helpers/processes.js';
import { RelayHost } from '../helpers/relay-host.js';
import { Topology } from '../helpers/topology.js';

// What an operator changes in a running mcrd without restarting it, and how a client that speaks
// another protocol is told so.

test('log levels: get, and set for the supervisor, the workers or both, in force at once', async () => {
  const topo = new Topology({ net: 81 });
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    assert.deepEqual(relay.mcrctlJson(['log-level']), { supervisor: 'info', workers: 'info' });
    assert.deepEqual(relay.mcrctlJson(['log-level', 'set', 'debug', '--component', 'workers']), {
      supervisor: 'info',
      workers: 'debug',
    });
    // A worker logs at debug now: adding a rule makes it log its joins and attachments.
    relay.addRule('239.1.1.1', 5000, '239.2.2.1:6000:out0');
    await waitFor('a worker debug line', () =>
      relay.daemon.stderr.split('\n').some((l) => l.includes('"level":20') && l.includes('"worker":0'))
        ? true
        : undefined,
    );
    assert.deepEqual(relay.mcrctlJson(['log-level', 'set', 'warn']), { supervisor: 'warn', workers: 'warn' });
    const bad = relay.mcrctl(['log-level', 'set', 'loud']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /E_INVALID_PARAMS/);
  } finally {
    topo.destroy();
  }
});

test('mcrctl version shows both sides; a client of another protocol gets one clear error', async () => {
  const topo = new Topology({ net: 80 });
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    const version = relay.mcrctlJson<{ client: { protocol: number }; daemon: { protocol: number } }>([
      'version',
    ]);
    assert.equal(version.client.protocol, PROTOCOL_VERSION);
    assert.equal(version.daemon.protocol, PROTOCOL_VERSION);
    const client = await ControlClient.open(topo.socketPath);
    try {
      await assert.rejects(
        client.call('version', { protocol: PROTOCOL_VERSION + 1, client: 'mcrctl from the future' }),
        (err: unknown) =>
          err instanceof ClientError &&
          err.code === 'E_PROTOCOL_MISMATCH' &&
          /mcrctl from the future speaks control protocol \d+, mcrd .* speaks \d+: use the mcrctl that comes with this mcrd/.test(
            err.message,
          ),
      );
    } finally {
      client.close();
    }
  } finally {
    topo.destroy();
  }
});
