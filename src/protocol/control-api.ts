import type { OutputRequest, RuleRequest } from '../rules/rule.js';
import type { McrEvent } from './control-events.js';
import type { TraceParams, TraceView, TracedPacket } from './control-trace.js';

/**
 * The control methods, their parameters and results: the one contract between mcrd and its
 * clients. Field names are the operator's words.
 */

export interface RuleView {
  id: string;
  name: string | null;
  input: {
    interface: string;
    /** 802.1Q VLAN id the input frames carry, or null for untagged traffic. */
    vlan: number | null;
    /** The one sender taken (source-specific input), or null for any. */
    source: string | null;
    group: string;
    port: number;
    unicast: boolean;
    /** The payload is read as RTP and its stream health counted (counters.rtp). */
    rtp: boolean;
  };
  outputs: OutputView[];
  /**
   * "active": forwarding to every output; "degraded": forwarding, but some outputs cannot send
   * (see their state); "down": its input link is down; "waiting": its input interface (or, for a
   * unicast input, the address) is not there yet, or none of its outputs can send.
   */
  state: 'active' | 'degraded' | 'down' | 'waiting';
  /** Why it is not simply active, in words; null when it is. */
  reason: string | null;
  /**
   * The data path while active: worker (AF_PACKET in the workers) or xdp (in the input's driver);
   * null while waiting. pathReason: why the rule is not on the XDP path, when it is not.
   */
  path: 'worker' | 'xdp' | null;
  pathReason: string | null;
  /** Where it came from: the config file, or a control client (kept in the state directory). */
  origin: 'config' | 'runtime';
  createdAt: string;
}

export interface OutputView {
  group: string;
  port: number;
  interface: string | null;
  /** The TTL cap (copies leave with the lower of it and the input's TTL minus one), or with ttlFixed the TTL every copy gets. */
  ttl: number;
  ttlFixed: boolean;
  /** The DSCP copies get, or null: they keep the input's. */
  dscp: number | null;
  /** Requested path: auto, raw, socket or xdp. */
  mode: string;
  /** The path in use: raw, socket or xdp (null while the output has no sockets). */
  path: 'raw' | 'socket' | 'xdp' | null;
  /** "active": sending; "down": its link is down (copies fail and are counted); "waiting": no sockets yet. */
  state: 'active' | 'down' | 'waiting';
  reason: string | null;
}

export interface RuleCounters {
  /** Frames that matched the rule's input (relayed or dropped below). */
  packetsIn: number;
  bytesIn: number;
  /**
   * Matched frames that were not relayed at all, by reason: own_source (sent from one of this
   * host's addresses: a loop), ttl_expired (no output could send a copy with TTL ≥ 1).
   */
  drops: Record<string, number>;
  /** Per output, in the rule's output order. */
  outputs: OutputCounters[];
  /** When the last frame that matched the rule arrived (ISO 8601, wall clock); null before the first. */
  lastPacketAt: string | null;
  /** Stream health of the rule's RTP payload (see RtpCounters); null when the rule has no rtp option. */
  rtp: RtpCounters | null;
}

/**
 * A rule's input payloads read as RTP (RFC 3550), counted per rule over every frame that matched
 * it. How holes, lateness and jumps are judged: docs/RTP-HEALTH.md.
 */
export interface RtpCounters {
  /** Payloads with an RTP version 2 header (12 bytes or more). */
  packets: number;
  /** Payloads that are not RTP: shorter than 12 bytes, or another version. */
  notRtp: number;
  /** Sequence numbers that never arrived: the sum of the gaps' sizes. */
  lost: number;
  /** Gaps: runs of consecutive lost sequence numbers. */
  gaps: number;
  /** Packets whose sequence number had already arrived. */
  duplicates: number;
  /** Late packets: they arrived after a later sequence number had (not duplicates). */
  reordered: number;
  /** A new sender (SSRC) took over the stream; its sequence starts afresh (not a gap). */
  ssrcChanges: number;
  /** The sequence jumped (over 3,000 ahead, or over 127 behind and went on from there): started afresh, not a gap. */
  resyncs: number;
}

export interface OutputCounters {
  packets: number;
  /** UDP payload bytes of the copies sent. */
  bytes: number;
  /** Of these, sent on the raw path. */
  raw: number;
  /**
   * Of these, handed to the output's driver by the XDP path (counted by its egress program; these
   * frames never reach a worker, so no worker counter has them).
   */
  xdp: number;
  /**
   * Copies the kernel refused, by errno name (e.g. ENOBUFS); on the XDP path, copies the output's
   * driver did not send, as xdp_refused (the driver gives no errno).
   */
  errors: Record<string, number>;
  /** Copies not sent because their TTL would have been 0 (the input arrived with TTL ≤ 1). */
  ttlExpired: number;
}

/**
 * Per-worker counters. Every frame the worker takes from a ring ends in exactly one bucket:
 * framesSeen = forwarded + noRule + notIpv4Udp + malformed + fragments + filtered + unsent +
 * workerRestart.
 */
export interface WorkerCounters {
  framesSeen: number;
  /** Matched a rule and at least one copy was sent (the kernel took it). */
  forwarded: number;
  /**
   * Reasons no_rule (no rule for this group and port), other_vlan (tagged with a VLAN no rule of
   * this input names), no_output (the rule matched but none of its outputs is ready).
   */
  noRule: number;
  /** Reasons not_ipv4, not_udp. */
  notIpv4Udp: number;
  /** Broken headers (the parser's reasons) and oversize. */
  malformed: number;
  fragments: number;
  /** Valid frames refused by policy: own_source, ttl_expired, too_many_vlan_tags. */
  filtered: number;
  /**
   * Reason egress_failed: copies were sent to every output that could take one, and the kernel
   * refused every one (each refusal also in the output's errors, by errno).
   */
  unsent: number;
  /**
   * Frames a dead worker left in a ring without counting them, and those that arrived before its
   * successor took the ring over: dropped unprocessed after a restart (never forwarded twice).
   * A frame the dead worker had counted is not counted again.
   */
  workerRestart: number;
  /** Every reason in detail; each belongs to exactly one bucket above. */
  dropsByReason: Record<string, number>;
  /** Output copies that failed to send, all outputs together. */
  egressErrors: number;
  /** Frames the kernel dropped because a ring was full (PACKET_STATISTICS). */
  ringDrops: number;
}

/** A worker process's memory and garbage collection since it started. */
export interface WorkerProcessHealth {
  rssBytes: number;
  gcCount: number;
  gcTotalMs: number;
  /** The longest single collection pause. */
  gcMaxPauseMs: number;
  /** Collections that paused longer than 1 ms (diff two snapshots to judge a steady-state window). */
  gcPausesOver1Ms: number;
  /** CPU time the process used since it started (user + system), in seconds. */
  cpuSeconds: number;
}

export interface RuleStatsView extends RuleView {
  /** Kept by mcrd across worker restarts and reloads: they never go backwards. */
  counters: RuleCounters;
  /**
   * Per second over the last rate interval, on a monotonic clock (0 within two intervals of a
   * stream stopping): input packets and bytes, and per output (rule order) packets and bytes.
   */
  rates: { packetsIn: number; bytesIn: number; outputs: number[]; outputBytes: number[] };
}

/** What the kernel counted on an interface mcr uses (/sys/class/net/IF/statistics), since it appeared. */
export interface InterfaceStatsView {
  name: string;
  rxPackets: number;
  /** Received but dropped by the kernel (no buffer, a full backlog, …). */
  rxDropped: number;
  /** Dropped by the device before the kernel saw them (rx_missed_errors; 0 where the driver does not count). */
  rxMissed: number;
  txPackets: number;
  txDropped: number;
  txErrors: number;
}

export interface WorkerView {
  id: number;
  pid: number | null;
  state: 'starting' | 'running' | 'stopped';
  rules: number;
  inputs: string[];
  startedAt: string | null;
  /** Times this worker was started again after it exited or stopped answering. */
  restarts: number;
  /** Times its rules were found to differ from the supervisor's and were sent again. */
  resyncs: number;
  cpu: number;
  /** The unprivileged account it runs as. */
  user: string;
  /**
   * Whether it runs under its own system-call filter (seccomp); false where mcr has none for the
   * architecture (it then logs a warning), null while no process is running.
   */
  confined: boolean | null;
  /** The nice value of its packet thread (--worker-nice), from /proc; null while none runs. */
  nice: number | null;
}

export interface WorkerStatsView extends WorkerView {
  counters: WorkerCounters;
  /** Null until the worker has reported. */
  health: WorkerProcessHealth | null;
  /** Frames per second, and the share of one CPU the process used (0-1) over the rate interval. */
  rates: { framesSeen: number; forwarded: number; cpu: number };
}

export interface StatsView {
  time: string;
  /** Seconds between the two samples the rates come from (0 when there is only one sample yet). */
  rateInterval: number;
  rules: RuleStatsView[];
  workers: WorkerStatsView[];
  /** The kernel's own counters for every interface a rule uses (inputs and outputs). */
  interfaces: InterfaceStatsView[];
}

/** What a config load or reload changed, and what it could not. */
export interface ReloadResult {
  /** Where the rules came from: the config file's path, or what mcrctl said it loaded. */
  source: string;
  added: string[];
  removed: string[];
  /** Rules whose outputs or name changed (their other outputs kept forwarding). */
  updated: string[];
  unchanged: number;
  /** Read but without effect, or applied with a caveat. */
  warnings: string[];
  /** Daemon settings the file changes that only a restart of mcrd applies, e.g. "workers 2 → 4". */
  needsRestart: string[];
}

/** Log levels in force: the supervisor's and the workers'. */
export interface LogLevels {
  supervisor: string;
  workers: string;
}

/**
 * What debug.tryDenied may have a worker attempt: a new socket, re-binding an ingress or an
 * egress socket to another interface, execve in place, running a child, signalling another
 * process.
 */
export type DeniedOperation = 'socket' | 'bind' | 'bind-egress' | 'exec' | 'spawn' | 'kill';

export interface ControlMethods {
  ping: { params: Record<string, never>; result: { pong: true; pid: number; uptimeSeconds: number } };
  /** With the client's protocol version, which must be the daemon's (else E_PROTOCOL_MISMATCH). */
  version: {
    params: { protocol?: number; client?: string };
    result: { version: string; protocol: number; node: string };
  };
  'rules.add': { params: RuleRequest; result: { rule: RuleView } };
  'rules.remove': { params: { id?: string; name?: string }; result: { removed: RuleView } };
  'rules.list': { params: Record<string, never>; result: { rules: RuleView[] } };
  'stats.get': { params: Record<string, never>; result: StatsView };
  'workers.list': { params: Record<string, never>; result: { workers: WorkerView[] } };
  /** Every rule as a config document (JSON5), config and runtime rules alike. */
  'config.show': { params: Record<string, never>; result: { text: string } };
  /** Writes the running rules over the config file mcrd was started with (--config). */
  'config.save': { params: Record<string, never>; result: { path: string; rules: number } };
  /** Applies a config document's rules (only the difference); runtime rules stay unless replace. */
  'config.load': { params: { text: string; source: string; replace?: boolean }; result: ReloadResult };
  /** Reads the config file again and applies it, as SIGHUP does. */
  'config.reload': { params: Record<string, never>; result: ReloadResult };
  'log.get': { params: Record<string, never>; result: LogLevels };
  /**
   * Opens a stream of events (notifications `event`) to this client, of the given types only
   * (`rule` stands for every rule.* type); with `last`, the last N kept events come first.
   */
  'events.subscribe': {
    params: { types?: string[]; last?: number };
    result: { stream: number; replayed: number; seq: number };
  };
  /** Sets the level of one component, or of both when none is named; in force at once. */
  'log.set': { params: { level: string; component?: 'supervisor' | 'workers' }; result: LogLevels };
  /**
   * Starts a trace (mcrctl trace) and opens a stream of `trace` notifications, one per traced
   * frame, which ends (stream.end) when `count` frames were shown, after `timeout` seconds, when
   * the traced rule is removed, or with the connection; the workers stop tracing then.
   */
  'trace.start': { params: TraceParams; result: { stream: number; trace: TraceView } };
  /** The traces running, and those whose workers have not yet said they stopped. */
  'trace.list': { params: Record<string, never>; result: { traces: TraceView[] } };
  /** Only with mcrd --debug-methods: fault injection for tests. */
  'debug.forgetRule': { params: { worker: number; id: string }; result: { sent: boolean } };
  /**
   * Only with mcrd --debug-methods: worker `worker` attempts an operation its filter denies (kill:
   * signal 0 to `pid`); `outcome` is the errno name (EPERM) or E_NOT_CONFINED.
   */
  'debug.tryDenied': {
    params: { worker: number; operation: DeniedOperation; pid?: number };
    result: { worker: number; operation: DeniedOperation; outcome: string; message: string };
  };
}

/**
 * Notifications mcrd sends on a stream a request opened, each `{"jsonrpc": "2.0", "method":
 * TOPIC, "params": {"stream": ID, …}}`. A client that reads too slowly is told how many items
 * it missed (stream.lost) before the next one; a stream ends with stream.end.
 */
export interface StreamNotifications {
  event: { stream: number; event: McrEvent };
  /**
   * One traced frame (packet), or null when the item only reports `missed`: frames the trace
   * took that a worker could not record since the last item (its buffer was full).
   */
  trace: { stream: number; packet: TracedPacket | null; missed: number };
  'stream.lost': { stream: number; lost: number };
  'stream.end': { stream: number; reason: string; lost: number };
}

export type MethodName = keyof ControlMethods;
export type ParamsOf<M extends MethodName> = ControlMethods[M]['params'];
export type ResultOf<M extends MethodName> = ControlMethods[M]['result'];

export type { OutputRequest, RuleRequest };

// The events' and the traces' shapes, with the rest of the contract.
export type * from './control-events.js';
export type * from './control-trace.js';
