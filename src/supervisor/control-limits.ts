import { MAX_LINE_BYTES } from '../protocol/json-rpc.js';

// What the control socket lets one client, and all of them, cost mcrd: slots, time, memory and
// event-loop time. mcrd is root and also watches its workers' heartbeats and the interfaces from
// the same event loop, so a client that stalls, floods or never reads must cost a bounded amount
// of each, and an operator's mcrctl must still get in. docs/CONTROL-PROTOCOL.md lists these.

/**
 * Clients connected at once. mcrctl opens one connection per command; 64 is far more than
 * operators and monitoring scripts need, and bounds the worst case of all of them misbehaving
 * at once to about 64 × 2.3 MiB (see the byte limits below) and 64 descriptors.
 */
export const MAX_CLIENTS = 64;

/**
 * A request line must end within this long of its first byte, or the connection is closed. mcrctl
 * writes each request with one write(), and a person typing into socat sends a whole line at
 * Enter, so a live client's line arrives at once; 15 s (the documented request limit) leaves room
 * for a host under heavy load. The clock stops while mcrd itself has stopped reading that client.
 */
export const LINE_DEADLINE_MS = 15_000;

/**
 * A method must answer within this long, or the request fails with E_TIMEOUT. No method waits on
 * the workers (stats.get reads the counters mcrd keeps); 15 s is for a badly overloaded host.
 */
export const REQUEST_TIMEOUT_MS = 15_000;

/**
 * A client whose replies have waited this long without draining is closed: it is not reading.
 * The same time as a request may take to arrive; the replies it leaves are already bounded in
 * size (REPLY_BUFFER_BYTES), this frees its slot.
 */
export const REPLY_STALL_MS = 15_000;

/**
 * Replies buffered in mcrd for one client (beyond what the kernel's socket buffer, about 200 KiB,
 * already holds). At this much mcrd stops answering, and reading, that client until its replies
 * drain: a client that never reads costs this, not the 1.9 GB it once did. Four times Node's
 * default, so a pipelining script gets many replies per write; a single larger reply (rules.list
 * of many rules) is still sent whole.
 */
export const REPLY_BUFFER_BYTES = 64 * 1024;

/**
 * Stream notifications (events, a trace) buffered in mcrd for one client. Beyond it items are
 * counted as lost and the client is told how many, rather than mcrd holding more: a subscriber
 * that reads slowly sees gaps it can count, never a daemon that grows. About 1000 items.
 */
export const STREAM_BUFFER_BYTES = 256 * 1024;

/**
 * Requests read from one client and not yet answered. mcrctl sends one at a time; 32 lets a
 * script pipeline usefully. At this count, or at MAX_QUEUED_BYTES of request text, mcrd stops
 * reading that client until it has answered them; the last read (at most 64 KiB) is still taken.
 */
export const MAX_QUEUED_REQUESTS = 32;
/** Request text queued for one client (see MAX_QUEUED_REQUESTS): one request of the largest size. */
export const MAX_QUEUED_BYTES = MAX_LINE_BYTES;

/**
 * When every slot is taken, a new client takes the place of one that has been stalled this long:
 * quiet in the middle of a request line, or not reading its replies. A live client's line arrives
 * within microseconds, so a second stuck is stuck.
 */
export const SHED_STALLED_AFTER_MS = 1_000;

/**
 * When every slot is taken and none is stalled, a new client takes the place of the one idle
 * longest (nothing half-sent, nothing to answer), if it has been idle this long. Idle connections
 * are otherwise kept for as long as their clients like (a persistent mcrctl script); 10 s spares a
 * script that polls every few seconds, and one idle longer reconnects in microseconds.
 */
export const SHED_IDLE_AFTER_MS = 10_000;

/**
 * The control plane's share of the event loop: it answers requests, round robin over clients,
 * for at most this long before it yields (setImmediate) to everything else: worker heartbeats,
 * interface events, other I/O. A ping costs a few µs, so this is hundreds of requests per slice;
 * against a 250-ms heartbeat with 1.5 s of grace it is nothing.
 */
export const SLICE_BUDGET_MS = 2;

/**
 * After its last reply (an error saying why), a client being closed has this long to take it;
 * then the connection is torn down. One that reads takes it in microseconds.
 */
export const CLOSE_LINGER_MS = 1_000;

/**
 * A client turned away (no slot) is given this long to send its first request, so that the
 * refusal answers it by its id and mcrctl prints why; mcrctl sends at once. It is read only up to
 * REFUSAL_LINE_BYTES.
 */
export const REFUSAL_WAIT_MS = 1_000;
export const REFUSAL_LINE_BYTES = 64 * 1024;
/**
 * Turned-away clients waited on at once (REFUSAL_WAIT_MS); more are refused at once with an error
 * that carries no id. Bounds what a storm of connections costs.
 */
export const MAX_REFUSING = 16;

/** At most one warning per this long about clients turned away: a storm must not become a log storm. */
export const REFUSAL_LOG_INTERVAL_MS = 10_000;

export interface ControlLimits {
  maxClients: number;
  lineDeadlineMs: number;
  requestTimeoutMs: number;
  replyStallMs: number;
  replyBufferBytes: number;
  streamBufferBytes: number;
  maxQueuedRequests: number;
  maxQueuedBytes: number;
  shedStalledAfterMs: number;
  shedIdleAfterMs: number;
  sliceBudgetMs: number;
  closeLingerMs: number;
  refusalWaitMs: number;
  refusalLineBytes: number;
  maxRefusing: number;
  refusalLogIntervalMs: number;
}

export const CONTROL_LIMITS: Readonly<ControlLimits> = Object.freeze({
  maxClients: MAX_CLIENTS,
  lineDeadlineMs: LINE_DEADLINE_MS,
  requestTimeoutMs: REQUEST_TIMEOUT_MS,
  replyStallMs: REPLY_STALL_MS,
  replyBufferBytes: REPLY_BUFFER_BYTES,
  streamBufferBytes: STREAM_BUFFER_BYTES,
  maxQueuedRequests: MAX_QUEUED_REQUESTS,
  maxQueuedBytes: MAX_QUEUED_BYTES,
  shedStalledAfterMs: SHED_STALLED_AFTER_MS,
  shedIdleAfterMs: SHED_IDLE_AFTER_MS,
  sliceBudgetMs: SLICE_BUDGET_MS,
  closeLingerMs: CLOSE_LINGER_MS,
  refusalWaitMs: REFUSAL_WAIT_MS,
  refusalLineBytes: REFUSAL_LINE_BYTES,
  maxRefusing: MAX_REFUSING,
  refusalLogIntervalMs: REFUSAL_LOG_INTERVAL_MS,
});

/** "300 ms", "15 s", "1.5 s": a duration as a person reads it in an error message. */
export function duration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${Number((ms / 1000).toFixed(1))} s`;
}
