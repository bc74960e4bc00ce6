// On-demand tracing (trace.start, mcrctl trace): what a trace selects and what it reports.

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
