import type { OutputRequest, RuleRequest } from '../rules/rule.js';

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
 * What happened in mcrd, as `mcrctl events` shows it and the log records it (the log line's
 * `event` field is this very object). The shape is stable: every field is always there, null
 * when it does not apply to the type; scripts match on `type`; `message` says the same in a
 * sentence. docs/CONTROL-PROTOCOL.md has the table of types and the fields each fills in.
 */
export interface McrEvent {
  /** 1, 2, 3… in the order mcrd published them since it started (a gap: events lost). */
  seq: number;
  /** ISO 8601, when mcrd saw it. */
  time: string;
  type: McrEventType;
  /** Who or what made a rule change (rule.*, config.applied); null for the other types. */
  cause: EventCause | null;
  rule: EventRule | null;
  worker: EventWorker | null;
  interface: EventInterface | null;
  /** flow.started, flow.stopped: what the input counter showed. */
  flow: EventFlow | null;
  /** config.applied: what the file or document changed. */
  config: EventConfig | null;
  message: string;
}

export type McrEventType =
  | 'rule.added'
  | 'rule.removed'
  | 'rule.updated'
  | 'rule.state'
  | 'config.applied'
  | 'worker.started'
  | 'worker.exited'
  | 'worker.restarted'
  | 'worker.resynced'
  | 'interface.appeared'
  | 'interface.vanished'
  | 'interface.up'
  | 'interface.down'
  | 'interface.address'
  | 'interface.mtu'
  | 'flow.started'
  | 'flow.stopped';

/**
 * Who made a change. `by`: control-client (mcrctl add/remove), config-reload (SIGHUP or mcrctl
 * config reload), config-load (mcrctl config load), config-start (the config file at start),
 * state-file (runtime rules restored at start), link-change (an interface changed: rule.state).
 */
export interface EventCause {
  by: 'control-client' | 'config-reload' | 'config-load' | 'config-start' | 'state-file' | 'link-change';
  /** The file (or what mcrctl said it loaded); null for control-client and link-change. */
  source: string | null;
  /** The control client that asked, null when none did (SIGHUP, start, link-change). */
  client: EventClient | null;
  /** SIGHUP for a reload by signal; else null. */
  signal: string | null;
  /** link-change: the interface that changed; else null. */
  interface: string | null;
}

/** A control connection: its number (as in the debug log) and, from the kernel, its process. */
export interface EventClient {
  id: number;
  /** SO_PEERCRED of the connection: the process that connected, null if the kernel did not say. */
  pid: number | null;
  uid: number | null;
}

export interface EventRule {
  id: string;
  name: string | null;
  /** "in0 239.1.1.1:5000" (with vlan and source when there are). */
  input: string;
  /** Per output, in the rule's order, as mcrctl add -o writes it: "239.2.2.2:6000:eth1". */
  outputs: string[];
  origin: 'config' | 'runtime';
  /** Its stream's RTP health is watched (the rule's rtp option). */
  rtp: boolean;
  state: RuleView['state'];
  reason: string | null;
  /** rule.state: the state before; else null. */
  previousState: RuleView['state'] | null;
}

export interface EventWorker {
  id: number;
  /** Its process (for worker.exited: the one that exited). */
  pid: number | null;
  /** worker.exited: its exit status, or the signal that killed it; else null. */
  code: number | null;
  signal: string | null;
  /** worker.exited: why mcrd killed it, if it did, or what it said when it could not start. */
  reason: string | null;
  /**
   * worker.exited: start-up (it died before answering a heartbeat: restarted with backoff),
   * killed (a signal from outside after it ran fine: restarted at once), failed (it ended by
   * itself, or mcrd replaced it); else null. See restart-policy.ts.
   */
  death: 'start-up' | 'killed' | 'failed' | null;
  /** worker.exited: in how many ms a new one starts. */
  restartInMs: number | null;
  /** worker.restarted: ms from the exit to the new worker's first heartbeat answer. */
  downMs: number | null;
  /** Restarts of this worker so far. */
  restarts: number;
  /** worker.resynced: drift (its rules hash differed) or caught-up (updates had been coalesced). */
  resync: 'drift' | 'caught-up' | null;
}

export interface EventInterface {
  name: string;
  /** Administratively up, and with a carrier (running), after the change. */
  up: boolean | null;
  running: boolean | null;
  mtu: number | null;
  /** Its IPv4 addresses after the change. */
  addresses: string[];
  /** interface.address: what came and went. */
  added: string[];
  removed: string[];
}

export interface EventFlow {
  /** Input packets the rule counted in the last sampling interval (flow.started) or in all (flow.stopped). */
  packets: number;
  /** flow.stopped: seconds without a new packet when it was declared stopped; flow.started: seconds it had been stopped (null: first packets). */
  idleSeconds: number | null;
}

export interface EventConfig {
  added: string[];
  removed: string[];
  updated: string[];
  unchanged: number;
  needsRestart: string[];
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

/** What trace.start takes: a rule (id or name), or an input interface with an optional group and port. */
export interface TraceParams {
  rule?: string;
  interface?: string;
  group?: string;
  port?: number;
  /** Frames to show before the trace stops by itself (default 20). */
  count?: number;
  /** Seconds before it stops by itself (default 30). */
  timeout?: number;
  /** Only frames that were dropped (any reason but forwarded). */
  dropsOnly?: boolean;
}

export interface TraceView {
  id: number;
  /** The client (connection number) that runs it. */
  client: number;
  /** What it cannot show (frames a rule on the XDP path relays), in a sentence; null: nothing. */
  unseen: string | null;
  rule: { id: string; name: string | null } | null;
  interface: string;
  group: string | null;
  port: number | null;
  count: number;
  timeoutSeconds: number;
  dropsOnly: boolean;
  /** Frames shown so far. */
  shown: number;
  startedAt: string;
  /** running; stopping: its stream ended, some workers have not yet said they stopped. */
  state: 'running' | 'stopping';
  /** Workers still tracing for it. */
  workersTracing: number;
}

/** One traced frame, as `mcrctl trace` shows it. */
export interface TracedPacket {
  /** When the kernel received it: ISO 8601 with microseconds. */
  time: string;
  worker: number;
  interface: string;
  /** The 802.1Q VLAN id, or null when untagged. Null fields below: the parser could not read them. */
  vlan: number | null;
  source: string | null;
  sourcePort: number | null;
  group: string | null;
  port: number | null;
  ttl: number | null;
  /** UDP payload bytes. */
  length: number | null;
  frameLength: number;
  /** forwarded, or the drop reason (no_rule, bad_ipv4_checksum, ttl_expired, egress_failed, …). */
  outcome: string;
  rule: { id: string; name: string | null } | null;
  /** Per output of the rule, in rule order: what became of its copy. */
  copies: TracedCopy[];
}

export interface TracedCopy {
  output: number;
  /** The output's destination, GROUP:PORT, and interface (null when the kernel routes it). */
  destination: string;
  interface: string | null;
  /** sent, refused (errno), ttl_expired (not sent: TTL would be 0), detached (the output had no sockets). */
  status: 'sent' | 'refused' | 'ttl_expired' | 'detached';
  path: 'raw' | 'socket' | null;
  errno: string | null;
}

export type MethodName = keyof ControlMethods;
export type ParamsOf<M extends MethodName> = ControlMethods[M]['params'];
export type ResultOf<M extends MethodName> = ControlMethods[M]['result'];

export type { OutputRequest, RuleRequest };
