import type { DeniedOperation, WorkerProcessHealth } from './control-api.js';
import type { CounterSlot } from './counter-layout.js';
import type { TraceRecord, TraceSelection } from './trace.js';

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

/**
 * A rule as a worker holds it: the input key and every output of the rule, in the rule's order.
 * Outputs that are not ready (their link is missing or has no address) have no sockets: the
 * worker keeps their counters and sends them no copies until an output.attach arrives.
 */
export interface WorkerRule {
  id: string;
  inputInterface: string;
  /** 802.1Q VLAN id the input frames must carry; 0: untagged (or VLAN id 0) frames only. */
  inputVlan: number;
  /** A source-specific input's sender (unsigned 32-bit), or 0: any source. */
  inputSource: number;
  inputGroup: number;
  inputPort: number;
  /** Read the payload as RTP and count its stream health (rtp-health.ts); absent: no. */
  rtp?: boolean;
  outputs: WorkerOutput[];
}

/** What a worker needs to know of one output to write each copy's IPv4 header. */
export interface WorkerOutput {
  /** The output as operators write it (describeOutput), for logs, traces and the ruleset hash. */
  label: string;
  /**
   * ttlFixed false: a copy leaves with min(input TTL - 1, ttl) and is not sent when that is 0.
   * ttlFixed true: every copy leaves with exactly ttl.
   */
  ttl: number;
  ttlFixed: boolean;
  /** DSCP of every copy, or null to keep the input's. The input's ECN bits are always kept. */
  dscp: number | null;
  /** Whether rule.add carries sockets for this output (see SupervisorMessage rule.add). */
  attached: boolean;
  /** The raw egress path of an attached output, or null: socket path only. */
  egress: RawEgressSpec | null;
}

/** What a worker needs to send an output's copies as whole frames (see packet/egress-header). */
export interface RawEgressSpec {
  /** The header template, hex. Its TTL and TOS are written per packet. */
  template: string;
  /** The output link's MTU: larger payloads take the socket path. */
  mtu: number;
}

/** Where a rule counts, and each of its outputs (in rule order), in the worker's counter region. */
export interface RuleCounterSlots {
  rule: CounterSlot;
  outputs: CounterSlot[];
}

export type SupervisorMessage =
  /**
   * Carries one fd: the worker's counter region (counter-layout.ts), REGION_BYTES of shared
   * memory the supervisor reads; the same region for every process that holds this worker id.
   */
  | { type: 'configure'; workerId: number; settings: DataPlaneSettings }
  /**
   * Carries one fd: an AF_PACKET socket of this interface, bound, its ring set up for `mtu`
   * (the worker maps it). `ring`: 'fresh', no one read it yet; 'in-use', a worker process that
   * died had it. When the worker already has this interface (its MTU grew: the new socket's
   * ring has larger slots), it hands over (worker/ring-handover.ts): a fresh socket comes
   * refusing frames, and the worker lets it take them, makes the old one refuse them, finishes
   * the old ring, skips the new ring's frames it already took from the old one, closes the old
   * socket and says input.handedOver. An in-use one (a replacement finishing a dead worker's
   * handover) comes after the old socket, both already switched by the supervisor.
   */
  | { type: 'input.attach'; interface: string; ifindex: number; mtu: number; ring: 'fresh' | 'in-use' }
  | { type: 'input.detach'; interface: string }
  /**
   * Carries, for each output with attached true in rule order, its connected UDP socket; then,
   * for each of those with an egress spec, in the same order, its AF_PACKET socket.
   */
  | { type: 'rule.add'; rule: WorkerRule; counters: RuleCounterSlots }
  | { type: 'rule.remove'; id: string }
  /**
   * A rule's outputs change (a config reload): `rule` is the rule as it is now, and for each of
   * its outputs `previous` gives the index of the same output in the rule the worker holds (it
   * keeps its sockets and counters) or -1 for a new one. Outputs no index names are closed.
   * Carries, for each new output with attached true in rule order, its UDP socket; then the raw
   * sockets of those with an egress spec.
   */
  | { type: 'rule.update'; rule: WorkerRule; previous: number[]; counters: RuleCounterSlots }
  /**
   * Output `index` of a rule gets sockets: the UDP socket, then the raw one when `egress` is
   * given. An output that had sockets has them replaced (a new source address, a new MTU).
   * Its counters carry on.
   */
  | { type: 'output.attach'; ruleId: string; index: number; egress: RawEgressSpec | null }
  /** Output `index` of a rule loses its sockets (its link vanished or lost its address). */
  | { type: 'output.detach'; ruleId: string; index: number }
  /**
   * Every IPv4 address of this host (its network namespace): frames from one of them are a
   * loop (the relay's own copies coming back) and are dropped as own_source.
   */
  | { type: 'host.addresses'; addresses: number[] }
  /** The worker's log level from now on (mcrctl log-level set). */
  | { type: 'log.level'; level: string }
  /** Liveness and drift check: the worker answers with the hash of the rules it holds. */
  | { type: 'heartbeat'; seq: number }
  /** Drop every rule (a resync follows with rule.add for each). */
  | { type: 'rules.reset' }
  /** Fault injection for tests (mcrd --debug-methods): forget a rule without being told why. */
  | { type: 'debug.forget'; id: string }
  /**
   * Fault injection (mcrd --debug-methods): attempt an operation the worker's system-call filter
   * denies (`pid`: the target of kill). The outcome comes back as an `error` message with this
   * subject, whose code is the errno name (EPERM) or E_NOT_CONFINED if the call went through.
   */
  | { type: 'debug.tryDenied'; operation: DeniedOperation; pid: number | null }
  /**
   * Record the frames `selection` takes (only drops with dropsOnly) until `count` are recorded or
   * trace.stop comes; records go back in trace.records messages, then trace.ended.
   */
  | { type: 'trace.start'; trace: number; selection: TraceSelection; count: number; dropsOnly: boolean }
  | { type: 'trace.stop'; trace: number }
  | { type: 'shutdown' };

export type WorkerMessage =
  | { type: 'ready'; pid: number }
  /**
   * The process's memory, garbage collection and CPU time, every statsIntervalMs. (Its packet
   * counters are in the counter region, which the supervisor reads itself.)
   */
  | { type: 'health'; health: WorkerProcessHealth }
  | { type: 'heartbeat'; seq: number; rulesHash: string }
  | { type: 'error'; code: string; message: string; subject: string }
  /** Why the worker cannot start (it exits with status 78 right after): for mcrd's error. */
  | { type: 'fatal'; code: string; message: string }
  /** Frames a trace took, in the order they arrived; `missed`: taken but not recorded (its buffer was full). */
  | { type: 'trace.records'; trace: number; records: TraceRecord[]; missed: number }
  /** The worker stopped tracing: it recorded its count, or was told to stop. Nothing follows for it. */
  | { type: 'trace.ended'; trace: number; reason: 'count' | 'stopped' }
  /** It finished a handover of this input to a new socket (input.attach) and closed the old one. */
  | { type: 'input.handedOver'; interface: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeMessage(message: SupervisorMessage | WorkerMessage): Uint8Array {
  return encoder.encode(JSON.stringify(message));
}

/**
 * A command from the supervisor, as a worker reads it. The supervisor is root and trusted by the
 * worker; the other direction is not trusted and goes through parseWorkerMessage
 * (worker-message-schema.ts) instead.
 */
export function decodeSupervisorMessage(data: Uint8Array): SupervisorMessage {
  return JSON.parse(decoder.decode(data)) as SupervisorMessage;
}
