import type { OutputCounters, RuleCounters, WorkerCounters, WorkerProcessHealth } from './control-api.js';

/**
 * Messages between the supervisor and a worker over their SOCK_SEQPACKET channel: one JSON object
 * per message; descriptors ride along as SCM_RIGHTS on the message that introduces them.
 */

/** Data-plane settings the supervisor chooses and the worker applies. */
export interface DataPlaneSettings {
  /** Bytes of RX ring per input interface. */
  ringBytes: number;
  /** Frames taken from a ring before the outputs are flushed (also the sendmmsg batch size). */
  batchSize: number;
  /** Batches handled per readiness callback before the worker yields to its event loop. */
  batchesPerWakeup: number;
  /** Microseconds a worker pauses after emptying a ring before it looks again (0: never). */
  coalesceUs: number;
  /** How often the worker pushes its counters. */
  statsIntervalMs: number;
}

/** A rule as a worker holds it: the input key and one egress socket per output (by index). */
export interface WorkerRule {
  id: string;
  inputInterface: string;
  inputGroup: number;
  inputPort: number;
  /** Output labels, for logs, traces and the ruleset hash. */
  outputs: string[];
  /** Per output: the raw egress path, or null for socket only. */
  egress: (RawEgressSpec | null)[];
}

/** What a worker needs to send an output's copies as whole frames (see packet/egress-header). */
export interface RawEgressSpec {
  /** The header template, hex. */
  template: string;
  /** The output link's MTU: larger payloads take the socket path. */
  mtu: number;
}

export type SupervisorMessage =
  | { type: 'configure'; workerId: number; settings: DataPlaneSettings }
  /** Carries one fd: the AF_PACKET socket of this interface, already bound. */
  | { type: 'input.attach'; interface: string; ifindex: number; mtu: number }
  | { type: 'input.detach'; interface: string }
  /**
   * Carries one fd per output, in the rule's output order (connected UDP sockets), then one
   * AF_PACKET socket per output with a raw egress path, in the same order.
   */
  | { type: 'rule.add'; rule: WorkerRule }
  | { type: 'rule.remove'; id: string }
  /**
   * New sockets for output `index` of a rule (its interface's address changed): the UDP socket,
   * then the raw one when `egress` is given.
   */
  | { type: 'output.replace'; ruleId: string; index: number; egress: RawEgressSpec | null }
  | { type: 'stats.request'; requestId: number }
  /** Liveness and drift check: the worker answers with the hash of the rules it holds. */
  | { type: 'heartbeat'; seq: number }
  /** Drop every rule (a resync follows with rule.add for each). */
  | { type: 'rules.reset' }
  /** Fault injection for tests (mcrd --debug-methods): forget a rule without being told why. */
  | { type: 'debug.forget'; id: string }
  | { type: 'shutdown' };

export interface WorkerStatsReport {
  worker: WorkerCounters;
  health: WorkerProcessHealth;
  rules: Record<string, RuleCounters>;
}

export type WorkerMessage =
  | { type: 'ready'; pid: number }
  | { type: 'stats'; requestId: number | null; report: WorkerStatsReport }
  | { type: 'heartbeat'; seq: number; rulesHash: string }
  | { type: 'error'; code: string; message: string; subject: string }
  /** Why the worker cannot start (it exits with status 78 right after): for mcrd's error. */
  | { type: 'fatal'; code: string; message: string };

export type { OutputCounters };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeMessage(message: SupervisorMessage | WorkerMessage): Uint8Array {
  return encoder.encode(JSON.stringify(message));
}

export function decodeMessage<T extends SupervisorMessage | WorkerMessage>(data: Uint8Array): T {
  return JSON.parse(decoder.decode(data)) as T;
}
