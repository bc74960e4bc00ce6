// Results of mcrgen runs as plain objects (what --json prints) and as text for a terminal.
// Pure: the receiver and sender hand over their counters, this file does the arithmetic.

import { ipv4RangeToString, ipv4ToString } from '../packet/ipv4-address.js';
import type { SendReport } from './sender.js';
import type { StreamStats } from './sequence-tracker.js';

export type RecvStop = 'count' | 'duration' | 'timeout' | 'signal';

export interface LatencySummary {
  minUs: number;
  avgUs: number;
  maxUs: number;
}

export interface StreamReport {
  streamId: number;
  /** Good probes, duplicates included. */
  received: number;
  unique: number;
  lost: number;
  duplicates: number;
  reordered: number;
  /** Arrived too far behind to check for duplicates (see SequenceTracker). */
  outOfWindow: number;
  /** Highest sequence number seen, -1 if none. */
  highestSeq: number;
  /** Payload bytes of good probes. */
  bytes: number;
  corrupted: number;
  corruptedByStatus: Record<string, number>;
  /** One-way latency; meaningful only when sender and receiver share a clock (same host). */
  latencyUs: LatencySummary | null;
}

export interface RecvTotals {
  /** Every datagram read, damaged or not. */
  datagrams: number;
  bytes: number;
  /** Datagrams that passed the probe checks. */
  good: number;
  unique: number;
  lost: number;
  duplicates: number;
  reordered: number;
  outOfWindow: number;
  corrupted: number;
  corruptedByStatus: Record<string, number>;
  streams: number;
  /** Arrival rate of good probes between the first and the last. */
  pps: number;
  payloadMbps: number;
  latencyUs: LatencySummary | null;
}

export interface ExpectResult {
  packets: number;
  ok: boolean;
  problems: string[];
}

export interface RecvReport {
  mode: 'recv';
  interface: string;
  /** The (first) group joined, or the unicast address listened for. */
  group: string;
  /** Consecutive groups joined (--streams). */
  groups: number;
  /** All groups: "239.1.1.1-239.1.1.100", or the one address. */
  groupRange: string;
  port: number;
  stoppedBy: RecvStop;
  /** A --count run that hit its --timeout before the count. */
  timedOut: boolean;
  elapsedSeconds: number;
  totals: RecvTotals;
  streams: StreamReport[];
  /**
   * Datagrams the kernel dropped for the receiver's socket, summed over its sockets with
   * --streams (receive buffer full); null if unknown.
   */
  kernelDrops: number | null;
  /** Per socket. */
  receiveBufferBytes: number;
  boundToDevice: boolean;
  expect: ExpectResult | null;
}

export interface ReceiveSummaryInput {
  interfaceName: string;
  group: number;
  /** Consecutive groups from `group` (--streams). */
  groups: number;
  port: number;
  stoppedBy: RecvStop;
  elapsedSeconds: number;
  countTarget: number | undefined;
  datagrams: number;
  bytes: number;
  /** Seconds between the first and the last good probe. */
  goodSpanSeconds: number;
  corrupted: ReadonlyMap<string, number>;
  streams: readonly StreamStats[];
  kernelDrops: number | undefined;
  receiveBufferBytes: number;
  boundToDevice: boolean;
  expect: number | undefined;
}

export function summarizeReceive(input: ReceiveSummaryInput): RecvReport {
  const streams = input.streams.map(streamReport);
  let good = 0;
  let goodBytes = 0;
  let unique = 0;
  let lost = 0;
  let duplicates = 0;
  let reordered = 0;
  let outOfWindow = 0;
  let latencyCount = 0;
  let latencySum = 0;
  let latencyMin = Number.POSITIVE_INFINITY;
  let latencyMax = Number.NEGATIVE_INFINITY;
  for (const s of input.streams) {
    good += s.sequence.received;
    goodBytes += s.bytes;
    unique += s.sequence.unique;
    lost += s.sequence.lost;
    duplicates += s.sequence.duplicates;
    reordered += s.sequence.reordered;
    outOfWindow += s.sequence.outOfWindow;
    latencyCount += s.latencyCount;
    latencySum += s.latencySumUs;
    latencyMin = Math.min(latencyMin, s.latencyMinUs);
    latencyMax = Math.max(latencyMax, s.latencyMaxUs);
  }
  const corruptedByStatus = Object.fromEntries(input.corrupted);
  let corrupted = 0;
  for (const n of input.corrupted.values()) corrupted += n;
  const pps = good > 1 && input.goodSpanSeconds > 0 ? (good - 1) / input.goodSpanSeconds : 0;
  const totals: RecvTotals = {
    datagrams: input.datagrams,
    bytes: input.bytes,
    good,
    unique,
    lost,
    duplicates,
    reordered,
    outOfWindow,
    corrupted,
    corruptedByStatus,
    streams: streams.length,
    pps,
    payloadMbps: good > 0 ? (pps * (goodBytes / good) * 8) / 1e6 : 0,
    latencyUs: latencyCount > 0 ? latency(latencyMin, latencySum / latencyCount, latencyMax) : null,
  };
  return {
    mode: 'recv',
    interface: input.interfaceName,
    group: ipv4ToString(input.group),
    groups: input.groups,
    groupRange: ipv4RangeToString(input.group, input.groups),
    port: input.port,
    stoppedBy: input.stoppedBy,
    timedOut: input.stoppedBy === 'timeout',
    elapsedSeconds: input.elapsedSeconds,
    totals,
    streams,
    kernelDrops: input.kernelDrops ?? null,
    receiveBufferBytes: input.receiveBufferBytes,
    boundToDevice: input.boundToDevice,
    expect: input.expect === undefined ? null : checkExpectation(totals, input.expect),
  };
}

/** --expect N holds when exactly N unique good probes arrived and nothing was lost, duplicated or damaged. */
export function checkExpectation(totals: RecvTotals, packets: number): ExpectResult {
  const problems: string[] = [];
  if (totals.unique !== packets)
    problems.push(`received ${totals.unique} unique good packets, expected ${packets}`);
  if (totals.lost > 0) problems.push(`${totals.lost} lost (gaps in the sequence numbers)`);
  if (totals.duplicates > 0) problems.push(`${totals.duplicates} duplicates`);
  if (totals.corrupted > 0)
    problems.push(`${totals.corrupted} corrupted (${statusList(totals.corruptedByStatus)})`);
  if (totals.outOfWindow > 0) {
    problems.push(`${totals.outOfWindow} arrived too far out of order to be checked for duplicates`);
  }
  return { packets, ok: problems.length === 0, problems };
}

function streamReport(s: StreamStats): StreamReport {
  const q = s.sequence;
  return {
    streamId: s.streamId,
    received: q.received,
    unique: q.unique,
    lost: q.lost,
    duplicates: q.duplicates,
    reordered: q.reordered,
    outOfWindow: q.outOfWindow,
    highestSeq: q.highest,
    bytes: s.bytes,
    corrupted: s.corruptedTotal,
    corruptedByStatus: Object.fromEntries(s.corrupted),
    latencyUs:
      s.latencyCount > 0 ? latency(s.latencyMinUs, s.latencySumUs / s.latencyCount, s.latencyMaxUs) : null,
  };
}

function latency(min: number, avg: number, max: number): LatencySummary {
  return { minUs: min, avgUs: Math.round(avg * 10) / 10, maxUs: max };
}

function statusList(byStatus: Record<string, number>): string {
  const parts = Object.entries(byStatus).map(([name, n]) => `${name} ${n}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

const STOP_WORDS: Record<string, string> = {
  count: 'count reached',
  duration: 'duration elapsed',
  timeout: 'TIMED OUT',
  signal: 'signal',
};

export function formatRecvText(r: RecvReport): string {
  const t = r.totals;
  const lines: string[] = [];
  const groups = r.groups > 1 ? ` (${r.groups} groups)` : '';
  lines.push(
    `mcrgen recv: ${r.groupRange}:${r.port}${groups} on ${r.interface}, ${r.elapsedSeconds.toFixed(3)} s, stopped: ${STOP_WORDS[r.stoppedBy]}`,
  );
  const header = [
    'stream',
    'received',
    'unique',
    'lost',
    'dup',
    'reordered',
    'corrupted',
    'highest seq',
    'latency µs min/avg/max',
  ];
  const rows: string[][] = r.streams.map((s) => [
    String(s.streamId),
    String(s.received),
    String(s.unique),
    String(s.lost),
    String(s.duplicates),
    String(s.reordered),
    String(s.corrupted),
    String(s.highestSeq),
    latencyText(s.latencyUs),
  ]);
  rows.push([
    'total',
    String(t.good),
    String(t.unique),
    String(t.lost),
    String(t.duplicates),
    String(t.reordered),
    String(t.corrupted),
    '',
    latencyText(t.latencyUs),
  ]);
  lines.push(...table(header, rows));
  lines.push(
    `datagrams ${t.datagrams} (${t.bytes} bytes), good ${t.good}, corrupted ${t.corrupted}` +
      (t.corrupted > 0 ? ` (${statusList(t.corruptedByStatus)})` : ''),
  );
  if (t.outOfWindow > 0) lines.push(`out of window (not checked for duplicates): ${t.outOfWindow}`);
  lines.push(`arrival rate ${Math.round(t.pps)} pps, ${t.payloadMbps.toFixed(1)} Mbit/s of UDP payload`);
  lines.push(
    `kernel drops on ${r.groups > 1 ? 'its sockets' : 'this socket'}: ${r.kernelDrops ?? 'unknown'}; receive buffer ${r.receiveBufferBytes} bytes${r.groups > 1 ? ' each' : ''}` +
      (r.boundToDevice ? '' : '; not bound to the device (no privilege)'),
  );
  if (r.expect !== null) {
    lines.push(
      r.expect.ok
        ? `expect ${r.expect.packets}: OK`
        : `expect ${r.expect.packets}: FAILED: ${r.expect.problems.join('; ')}`,
    );
  }
  return lines.join('\n');
}

export function formatSendText(r: SendReport): string {
  const target = r.targetRate === 'max' ? 'as fast as possible' : `target ${r.targetRate} pps`;
  const errors = Object.entries(r.sendErrors).map(([name, n]) => `${name} ${n}`);
  const ids = r.streams * r.senders;
  const streams =
    ids > 1
      ? `${ids} streams (ids ${r.streamId}-${(r.streamId + ids - 1) % 0x1_0000_0000}, ${r.streams > 1 ? 'round-robin' : 'one'}${r.senders > 1 ? ` from each of ${r.senders} senders` : ''})`
      : `stream ${r.streamId}`;
  const raw = r.raw;
  return [
    `mcrgen send: ${r.packets} packets of ${r.size} bytes to ${r.destinationRange}:${r.port} via ${r.interface}, ${streams}, stopped: ${STOP_WORDS[r.stoppedBy]}`,
    `${r.bytes} bytes in ${r.elapsedSeconds.toFixed(3)} s: ${Math.round(r.pps)} pps, ${r.payloadMbps.toFixed(1)} Mbit/s of UDP payload (${target})`,
    ...(raw === null
      ? []
      : [
          `raw frames ${raw.sourceMac} ${raw.sourceAddress}:${raw.sourcePort} > ${raw.destinationMac}, ttl ${raw.ttl}, through an AF_PACKET socket` +
            `${raw.qdiscBypass ? ', qdisc bypassed' : ''}; packets are the frames the kernel accepted` +
            (raw.dropWhenFull
              ? `, ${r.refused} refused by a full device queue and dropped (${percentOf(r.refused, r.packets + r.refused)} of ${r.packets + r.refused} offered)`
              : ''),
        ]),
    `retries ${r.retries} (partial batches ${r.partialSends}; transient errors: ${errors.length > 0 ? errors.join(', ') : 'none'})` +
      (r.boundToDevice ? '' : '; not bound to the device (no privilege)'),
    ...(r.rtp === null
      ? []
      : [
          `rtp: ssrc ${r.rtp.ssrc}, payload type ${r.rtp.payloadType}, sequence ${r.rtp.firstSequence} to ${r.rtp.lastSequence ?? '-'}; ` +
            `injected: ${r.rtp.injected.gaps} gaps (${r.rtp.injected.lost} numbers lost), ${r.rtp.injected.duplicates} duplicates, ${r.rtp.injected.reordered} reordered`,
        ]),
  ].join('\n');
}

function percentOf(part: number, whole: number): string {
  return whole > 0 ? `${((part / whole) * 100).toFixed(2)} %` : '0 %';
}

function latencyText(l: LatencySummary | null): string {
  return l === null ? '-' : `${l.minUs}/${Math.round(l.avgUs)}/${l.maxUs}`;
}

/** Left-aligned first column, right-aligned numbers, two spaces between columns. */
function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}
