// The events mcrd publishes (events.subscribe, mcrctl events, the log's `event` field).
import type { RuleView } from './control-api.js';

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
