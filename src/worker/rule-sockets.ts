import type { RawEgressSpec, WorkerRule } from '../protocol/worker-messages.js';

/** The sockets rule.add brought for one attached output. */
export interface OutputSockets {
  socketFd: number;
  raw: { fd: number; spec: RawEgressSpec } | undefined;
}

/**
 * Which descriptor of a rule.add belongs to which output: the UDP socket of each attached output
 * in rule order, then the raw socket of each attached output that has an egress spec, in the
 * same order. Detached outputs get none (undefined). Throws when the count does not add up, so
 * no socket ends up on the wrong output.
 */
export function ruleSockets(rule: WorkerRule, fds: readonly number[]): (OutputSockets | undefined)[] {
  const attached = rule.outputs.filter((o) => o.attached);
  const rawCount = attached.filter((o) => o.egress !== null).length;
  if (fds.length !== attached.length + rawCount) {
    throw new Error(
      `rule ${rule.id} came with ${fds.length} sockets for ${attached.length} attached outputs and ${rawCount} raw paths`,
    );
  }
  let nextSocket = 0;
  let nextRaw = attached.length;
  return rule.outputs.map((output) => {
    if (!output.attached) return undefined;
    const socketFd = fds[nextSocket++]!;
    const raw = output.egress ? { fd: fds[nextRaw++]!, spec: output.egress } : undefined;
    return { socketFd, raw };
  });
}

/**
 * The descriptors of a rule.update: like ruleSockets, for the outputs `previous` marks as new
 * (-1) only; outputs that stay keep the sockets they have (undefined here).
 */
export function newOutputSockets(
  rule: WorkerRule,
  previous: readonly number[],
  fds: readonly number[],
): (OutputSockets | undefined)[] {
  if (previous.length !== rule.outputs.length) {
    throw new Error(
      `rule.update for ${rule.id}: ${previous.length} indexes for ${rule.outputs.length} outputs`,
    );
  }
  const fresh = rule.outputs.map((o, i) => (previous[i]! < 0 ? o : { ...o, attached: false }));
  return ruleSockets({ ...rule, outputs: fresh }, fds);
}
