// The two data paths an end-to-end test can run a rule on: the workers' raw egress (mode auto
// on these veth links) or the XDP path (mode xdp). For XDP the topology is prepared as a real
// network would be: the receiver's ends get NAPI (GRO on), without which a frame redirected into
// a veth is lost, and the sender sends complete UDP checksums (tx offload off), which a local
// sender on a veth otherwise leaves partial and a redirect does not complete.
import assert from 'node:assert/strict';
import type { Topology } from './topology.js';

export type DataPath = 'raw' | 'xdp';
export const DATA_PATHS: readonly DataPath[] = ['raw', 'xdp'];

/** Makes the topology ready for `path` (nothing to do for raw). */
export function preparePath(topo: Topology, path: DataPath): void {
  if (path !== 'xdp') return;
  for (let i = 0; i < topo.outputLinks; i++) {
    const r = topo.exec(topo.receiver, 'ethtool', ['-K', `eth${i}`, 'gro', 'on']);
    assert.equal(r.code, 0, r.stderr);
  }
  const r = topo.exec(topo.sender, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
  assert.equal(r.code, 0, r.stderr);
}

/** "G:P:IF,…" with each output on `path` (raw: as given, so auto picks raw on these links). */
export function onPath(outputs: string, path: DataPath): string {
  if (path === 'raw') return outputs;
  // The mode is the fourth positional part, before any option (ttl=, fixed-ttl=, dscp=).
  return outputs
    .split(',')
    .map((o) => {
      const parts = o.split(':');
      return [...parts.slice(0, 3), 'xdp', ...parts.slice(3)].join(':');
    })
    .join(',');
}

/** A test's name, marked when it runs on the XDP path (the raw variant keeps its old name). */
export function named(name: string, path: DataPath): string {
  return path === 'xdp' ? `${name} (XDP path)` : name;
}

/** What the workers' forwarded counter shows for `n` relayed frames: XDP frames never reach them. */
export function workerForwarded(n: number, path: DataPath): number {
  return path === 'xdp' ? 0 : n;
}

/** Copies the worker path counted as raw, or the XDP path as xdp, for an output that sent `n`. */
export function pathCopies(path: DataPath, n: number): { raw: number; xdp: number } {
  return path === 'xdp' ? { raw: 0, xdp: n } : { raw: n, xdp: 0 };
}
