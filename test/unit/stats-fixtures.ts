import type {
  InterfaceStatsView,
  RtpCounters,
  RuleStatsView,
  StatsView,
  WorkerStatsView,
} from '../../src/protocol/control-api.js';
import type { Snapshot } from '../../src/cli/top-model.js';

// stats.get answers as mcrd gives them, built field by field for the live views' unit tests.

export function rule(
  id: string,
  name: string | null,
  more: {
    pps?: number;
    bytesPerSecond?: number;
    outputs?: { pps: number; bytesPerSecond: number; errors?: Record<string, number>; ttlExpired?: number }[];
    drops?: Record<string, number>;
    lastPacketAt?: string | null;
    packetsIn?: number;
    state?: RuleStatsView['state'];
    reason?: string | null;
    rtp?: Partial<RtpCounters>;
  } = {},
): RuleStatsView {
  const outputs = more.outputs ?? [{ pps: more.pps ?? 0, bytesPerSecond: more.bytesPerSecond ?? 0 }];
  return {
    id,
    name,
    input: {
      interface: 'in0',
      vlan: null,
      source: null,
      group: '239.1.1.1',
      port: 5000,
      unicast: false,
      rtp: more.rtp !== undefined,
    },
    outputs: outputs.map((_, i) => ({
      group: `239.2.2.${i + 1}`,
      port: 6000,
      interface: 'out0',
      ttl: 16,
      ttlFixed: false,
      dscp: null,
      mode: 'auto',
      path: 'raw',
      state: 'active',
      reason: null,
    })),
    state: more.state ?? 'active',
    reason: more.reason ?? null,
    path: 'worker',
    pathReason: null,
    origin: 'runtime',
    createdAt: '2026-12-01T00:00:00.000Z',
    counters: {
      packetsIn: more.packetsIn ?? 0,
      bytesIn: 0,
      drops: more.drops ?? {},
      outputs: outputs.map((o) => ({
        packets: 0,
        bytes: 0,
        raw: 0,
        xdp: 0,
        errors: o.errors ?? {},
        ttlExpired: o.ttlExpired ?? 0,
      })),
      lastPacketAt: more.lastPacketAt === undefined ? null : more.lastPacketAt,
      rtp:
        more.rtp === undefined
          ? null
          : {
              packets: 0,
              notRtp: 0,
              lost: 0,
              gaps: 0,
              duplicates: 0,
              reordered: 0,
              ssrcChanges: 0,
              resyncs: 0,
              ...more.rtp,
            },
    },
    rates: {
      packetsIn: more.pps ?? 0,
      bytesIn: more.bytesPerSecond ?? 0,
      outputs: outputs.map((o) => o.pps),
      outputBytes: outputs.map((o) => o.bytesPerSecond),
    },
  };
}

export function worker(
  id: number,
  more: {
    framesSeen?: number;
    forwarded?: number;
    ringDrops?: number;
    dropsByReason?: Record<string, number>;
    fps?: number;
    cpu?: number;
    state?: WorkerStatsView['state'];
    restarts?: number;
    rssBytes?: number | null;
  } = {},
): WorkerStatsView {
  const rss = more.rssBytes === undefined ? 50 * 1048576 : more.rssBytes;
  return {
    id,
    pid: 1000 + id,
    state: more.state ?? 'running',
    rules: 1,
    inputs: ['in0'],
    startedAt: '2026-12-01T00:00:00.000Z',
    restarts: more.restarts ?? 0,
    resyncs: 0,
    cpu: id,
    user: 'mcr',
    confined: true,
    nice: -10,
    counters: {
      framesSeen: more.framesSeen ?? 0,
      forwarded: more.forwarded ?? 0,
      noRule: 0,
      notIpv4Udp: 0,
      malformed: 0,
      fragments: 0,
      filtered: 0,
      unsent: 0,
      workerRestart: 0,
      dropsByReason: more.dropsByReason ?? {},
      egressErrors: 0,
      ringDrops: more.ringDrops ?? 0,
    },
    health:
      rss === null
        ? null
        : { rssBytes: rss, gcCount: 0, gcTotalMs: 0, gcMaxPauseMs: 0, gcPausesOver1Ms: 0, cpuSeconds: 0 },
    rates: { framesSeen: more.fps ?? 0, forwarded: more.fps ?? 0, cpu: more.cpu ?? 0 },
  };
}

export function iface(name: string, more: Partial<InterfaceStatsView> = {}): InterfaceStatsView {
  return { name, rxPackets: 0, rxDropped: 0, rxMissed: 0, txPackets: 0, txDropped: 0, txErrors: 0, ...more };
}

export function snapshot(
  at: number,
  parts: {
    rules?: RuleStatsView[];
    workers?: WorkerStatsView[];
    interfaces?: InterfaceStatsView[];
    time?: string;
  },
): Snapshot {
  const stats: StatsView = {
    time: parts.time ?? '2026-12-01T00:01:00.000Z',
    rateInterval: 1,
    rules: parts.rules ?? [],
    workers: parts.workers ?? [],
    interfaces: parts.interfaces ?? [],
  };
  return { stats, at };
}
