import type { Registry } from 'prom-client';
import type {
  InterfaceStatsView,
  RtpCounters,
  RuleStatsView,
  StatsView,
  WorkerCounters,
  WorkerStatsView,
} from '../protocol/control-api.js';
import { SnapshotCounter, SnapshotGauge, type SnapshotMetric } from './metrics-snapshot.js';

/**
 * mcr's metric families and how a stats snapshot fills them. Names follow Prometheus'
 * conventions: the mcr_ prefix, base units (bytes, seconds), counters ending in _total, states
 * as one-hot gauges. Every family is filled from scratch on each scrape, so a rule, output or
 * worker that is gone disappears from the next scrape.
 */

/** Labels every rule and output series carries: who the rule is and what it listens to. */
const RULE_LABELS = ['rule_id', 'rule_name', 'input_interface', 'input_group', 'input_port'] as const;
const OUTPUT_LABELS = [...RULE_LABELS, 'output', 'output_group', 'output_port', 'output_interface'] as const;

/** Rule drop reasons that always have a series (0 until one happens), so rate() has data. */
const RULE_DROP_REASONS = ['own_source', 'ttl_expired'] as const;
const RULE_STATES: readonly RuleStatsView['state'][] = ['active', 'degraded', 'down', 'waiting'];
const OUTPUT_STATES = ['active', 'down', 'waiting'] as const;
const OUTPUT_PATHS = ['raw', 'socket', 'xdp'] as const;
const WORKER_STATES: readonly WorkerStatsView['state'][] = ['starting', 'running', 'stopped'];

/**
 * The buckets whose sum is a worker's frames seen, by the outcome label each gets: in PromQL,
 * mcr_worker_frames_seen_total == sum without (outcome) (mcr_worker_frames_total).
 */
const WORKER_OUTCOMES: readonly (readonly [string, keyof WorkerCounters])[] = [
  ['forwarded', 'forwarded'],
  ['no_rule', 'noRule'],
  ['not_ipv4_udp', 'notIpv4Udp'],
  ['malformed', 'malformed'],
  ['fragment', 'fragments'],
  ['filtered', 'filtered'],
  ['unsent', 'unsent'],
  ['worker_restart', 'workerRestart'],
];

const INTERFACE_COUNTERS: readonly (readonly [string, keyof Omit<InterfaceStatsView, 'name'>, string])[] = [
  ['receive_packets_total', 'rxPackets', 'Packets the kernel received on the interface.'],
  [
    'receive_dropped_packets_total',
    'rxDropped',
    'Packets the kernel received on the interface and dropped (no buffer, a full backlog).',
  ],
  [
    'receive_missed_packets_total',
    'rxMissed',
    'Packets the device dropped before the kernel saw them (0 where the driver does not count them).',
  ],
  ['transmit_packets_total', 'txPackets', 'Packets the kernel sent on the interface.'],
  [
    'transmit_dropped_packets_total',
    'txDropped',
    'Packets the kernel dropped on the way out of the interface.',
  ],
  ['transmit_errors_total', 'txErrors', 'Transmit errors the interface counted.'],
];

/** A rule's RTP stream health (rules with the rtp option only): name suffix, field, help. */
const RTP_COUNTERS: readonly (readonly [string, keyof RtpCounters, string])[] = [
  ['packets_total', 'packets', 'Payloads of the rule input with an RTP version 2 header.'],
  [
    'not_rtp_packets_total',
    'notRtp',
    'Payloads of the rule input that are not RTP (too short, another version).',
  ],
  ['lost_packets_total', 'lost', 'RTP sequence numbers that never arrived (the sum of the gap sizes).'],
  ['gaps_total', 'gaps', 'Runs of consecutive lost RTP sequence numbers.'],
  ['duplicate_packets_total', 'duplicates', 'RTP packets whose sequence number had already arrived.'],
  ['reordered_packets_total', 'reordered', 'RTP packets that arrived after a later sequence number (late).'],
  [
    'ssrc_changes_total',
    'ssrcChanges',
    'Times a new RTP sender (SSRC) took over the stream (not counted as a gap).',
  ],
  [
    'resyncs_total',
    'resyncs',
    'Times the RTP sequence jumped and was followed afresh (not counted as a gap).',
  ],
];

export class MetricFamilies {
  private readonly all: SnapshotMetric<string>[] = [];

  private readonly buildInfo;
  private readonly collectionSeconds;
  private readonly ruleInfo;
  private readonly ruleState;
  private readonly ruleReceivedPackets;
  private readonly ruleReceivedBytes;
  private readonly ruleDropped;
  private readonly ruleLastPacket;
  private readonly outputState;
  private readonly outputPath;
  private readonly outputSentPackets;
  private readonly outputSentBytes;
  private readonly outputSendErrors;
  private readonly outputTtlExpired;
  private readonly workerState;
  private readonly workerStartTime;
  private readonly workerFramesSeen;
  private readonly workerFrames;
  private readonly workerDropped;
  private readonly workerEgressErrors;
  private readonly workerRingDropped;
  private readonly workerRestarts;
  private readonly workerResyncs;
  private readonly workerMemory;
  private readonly workerCpu;
  private readonly workerGcCollections;
  private readonly workerGcPause;
  private readonly workerGcMaxPause;
  private readonly workerGcLongPauses;
  private readonly interfaceCounters: SnapshotCounter<'interface'>[];
  private readonly rtpCounters: SnapshotCounter<(typeof RULE_LABELS)[number]>[];

  constructor(registry: Registry) {
    const counter = <N extends string>(
      name: string,
      help: string,
      labelNames: readonly N[],
    ): SnapshotCounter<N> => {
      const c = new SnapshotCounter<N>(registry, name, help, labelNames);
      this.all.push(c as SnapshotMetric<string>);
      return c;
    };
    const gauge = <N extends string>(
      name: string,
      help: string,
      labelNames: readonly N[],
    ): SnapshotGauge<N> => {
      const g = new SnapshotGauge<N>(registry, name, help, labelNames);
      this.all.push(g as SnapshotMetric<string>);
      return g;
    };
    this.buildInfo = gauge('mcr_build_info', 'Always 1: the version of mcrd and of Node.js it runs on.', [
      'version',
      'node',
    ]);
    this.collectionSeconds = gauge(
      'mcr_stats_collection_seconds',
      'How long mcrd took to collect the counters this scrape shows.',
      [],
    );

    this.ruleInfo = gauge(
      'mcr_rule_info',
      'Always 1, for every rule: its VLAN and source (empty for none), whether it counts RTP health, and where it came from (config or runtime).',
      [...RULE_LABELS, 'input_vlan', 'input_source', 'input_rtp', 'origin'],
    );
    this.ruleState = gauge(
      'mcr_rule_state',
      'The rule state: 1 for the state it is in (active, degraded, down, waiting), 0 for the others.',
      [...RULE_LABELS, 'state'],
    );
    this.ruleReceivedPackets = counter(
      'mcr_rule_received_packets_total',
      'Packets that matched the rule input.',
      RULE_LABELS,
    );
    this.ruleReceivedBytes = counter(
      'mcr_rule_received_bytes_total',
      'UDP payload bytes of the packets that matched the rule input.',
      RULE_LABELS,
    );
    this.ruleDropped = counter(
      'mcr_rule_dropped_packets_total',
      'Matched packets relayed to no output, by reason (own_source: sent from this host, a loop; ttl_expired).',
      [...RULE_LABELS, 'reason'],
    );
    this.ruleLastPacket = gauge(
      'mcr_rule_last_packet_timestamp_seconds',
      'When the last packet that matched the rule arrived, in seconds since the epoch (absent before the first).',
      RULE_LABELS,
    );

    this.outputState = gauge(
      'mcr_output_state',
      'The output state: 1 for the state it is in (active, down, waiting), 0 for the others.',
      [...OUTPUT_LABELS, 'state'],
    );
    this.outputPath = gauge(
      'mcr_output_path',
      'The egress path the output uses: 1 for the one it uses (raw, socket or xdp), 0 for the others (all 0 while it has no sockets).',
      [...OUTPUT_LABELS, 'path'],
    );
    this.outputSentPackets = counter(
      'mcr_output_sent_packets_total',
      'Copies the kernel took for the output, by egress path (raw, socket, or xdp: handed to the driver by the XDP path).',
      [...OUTPUT_LABELS, 'path'],
    );
    this.outputSentBytes = counter(
      'mcr_output_sent_bytes_total',
      'UDP payload bytes of the copies sent to the output.',
      OUTPUT_LABELS,
    );
    this.outputSendErrors = counter(
      'mcr_output_send_errors_total',
      'Copies for the output the kernel refused, by errno name (xdp_refused: the driver did not send an XDP copy).',
      [...OUTPUT_LABELS, 'errno'],
    );
    this.outputTtlExpired = counter(
      'mcr_output_ttl_expired_packets_total',
      'Copies not sent to the output because their TTL would have been 0.',
      OUTPUT_LABELS,
    );

    this.workerState = gauge(
      'mcr_worker_state',
      'The worker state: 1 for the state it is in (starting, running, stopped), 0 for the others.',
      ['worker', 'state'],
    );
    this.workerStartTime = gauge(
      'mcr_worker_start_time_seconds',
      'When the running worker process started, in seconds since the epoch.',
      ['worker'],
    );
    this.workerFramesSeen = counter(
      'mcr_worker_frames_seen_total',
      'Frames the worker took from its rings; each ends in exactly one outcome of mcr_worker_frames_total.',
      ['worker'],
    );
    this.workerFrames = counter(
      'mcr_worker_frames_total',
      'Frames the worker took from its rings, by outcome; their sum is mcr_worker_frames_seen_total.',
      ['worker', 'outcome'],
    );
    this.workerDropped = counter(
      'mcr_worker_dropped_frames_total',
      'Frames the worker did not forward, by detailed reason (each within one outcome of mcr_worker_frames_total).',
      ['worker', 'reason'],
    );
    this.workerEgressErrors = counter(
      'mcr_worker_egress_errors_total',
      'Output copies the kernel refused, all outputs of the worker together.',
      ['worker'],
    );
    this.workerRingDropped = counter(
      'mcr_worker_ring_dropped_frames_total',
      'Frames the kernel dropped because a receive ring of the worker was full.',
      ['worker'],
    );
    this.workerRestarts = counter(
      'mcr_worker_restarts_total',
      'Times the worker was started again after it exited or stopped answering.',
      ['worker'],
    );
    this.workerResyncs = counter(
      'mcr_worker_resyncs_total',
      'Times the worker rules differed from the supervisor rules and were sent again.',
      ['worker'],
    );
    this.workerMemory = gauge('mcr_worker_resident_memory_bytes', 'Resident memory of the worker process.', [
      'worker',
    ]);
    this.workerCpu = counter(
      'mcr_worker_cpu_seconds_total',
      'CPU time (user and system) the worker process used since it started.',
      ['worker'],
    );
    this.workerGcCollections = counter(
      'mcr_worker_gc_collections_total',
      'Garbage collections in the worker process.',
      ['worker'],
    );
    this.workerGcPause = counter(
      'mcr_worker_gc_pause_seconds_total',
      'Time the worker process spent paused in garbage collection.',
      ['worker'],
    );
    this.workerGcMaxPause = gauge(
      'mcr_worker_gc_max_pause_seconds',
      'The longest single garbage collection pause of the worker process.',
      ['worker'],
    );
    this.workerGcLongPauses = counter(
      'mcr_worker_gc_long_pauses_total',
      'Garbage collections of the worker process that paused it for more than 1 ms.',
      ['worker'],
    );

    this.rtpCounters = RTP_COUNTERS.map(([suffix, , help]) =>
      counter(`mcr_rule_rtp_${suffix}`, `${help} (Rules with the rtp option only.)`, RULE_LABELS),
    );
    this.interfaceCounters = INTERFACE_COUNTERS.map(([suffix, , help]) =>
      counter(`mcr_interface_${suffix}`, `${help} (The kernel's own count, for interfaces rules use.)`, [
        'interface',
      ]),
    );
  }

  /** Replaces every value with those of `view`. Synchronous, so no scrape sees half of it. */
  fill(view: StatsView, build: { version: string; node: string }, collectionSeconds: number): void {
    for (const metric of this.all) metric.clear();
    this.buildInfo.put(build, 1);
    this.collectionSeconds.put({}, collectionSeconds);
    for (const rule of view.rules) this.fillRule(rule);
    for (const worker of view.workers) this.fillWorker(worker);
    for (const statistics of view.interfaces) {
      INTERFACE_COUNTERS.forEach(([, field], i) =>
        this.interfaceCounters[i]!.put({ interface: statistics.name }, statistics[field]),
      );
    }
  }

  private fillRule(rule: RuleStatsView): void {
    const labels = {
      rule_id: rule.id,
      rule_name: rule.name ?? '',
      input_interface: rule.input.interface,
      input_group: rule.input.group,
      input_port: rule.input.port,
    };
    const { counters } = rule;
    this.ruleInfo.put(
      {
        ...labels,
        input_vlan: rule.input.vlan ?? '',
        input_source: rule.input.source ?? '',
        input_rtp: String(rule.input.rtp),
        origin: rule.origin,
      },
      1,
    );
    for (const state of RULE_STATES) this.ruleState.put({ ...labels, state }, rule.state === state ? 1 : 0);
    this.ruleReceivedPackets.put(labels, counters.packetsIn);
    this.ruleReceivedBytes.put(labels, counters.bytesIn);
    const drops: Record<string, number> = Object.fromEntries(RULE_DROP_REASONS.map((r) => [r, 0]));
    for (const [reason, n] of Object.entries(counters.drops)) drops[reason] = n;
    for (const [reason, n] of Object.entries(drops)) this.ruleDropped.put({ ...labels, reason }, n);
    if (counters.lastPacketAt !== null) {
      const at = Date.parse(counters.lastPacketAt);
      if (Number.isFinite(at)) this.ruleLastPacket.put(labels, at / 1000);
    }
    const rtp = counters.rtp;
    if (rtp) RTP_COUNTERS.forEach(([, field], i) => this.rtpCounters[i]!.put(labels, rtp[field]));
    rule.outputs.forEach((output, i) => {
      const outputLabels = {
        ...labels,
        output: i,
        output_group: output.group,
        output_port: output.port,
        output_interface: output.interface ?? '',
      };
      for (const state of OUTPUT_STATES)
        this.outputState.put({ ...outputLabels, state }, output.state === state ? 1 : 0);
      for (const path of OUTPUT_PATHS)
        this.outputPath.put({ ...outputLabels, path }, output.path === path ? 1 : 0);
      const sent = counters.outputs[i];
      if (sent === undefined) return;
      this.outputSentPackets.put({ ...outputLabels, path: 'raw' }, sent.raw);
      this.outputSentPackets.put({ ...outputLabels, path: 'socket' }, sent.packets - sent.raw - sent.xdp);
      this.outputSentPackets.put({ ...outputLabels, path: 'xdp' }, sent.xdp);
      this.outputSentBytes.put(outputLabels, sent.bytes);
      this.outputTtlExpired.put(outputLabels, sent.ttlExpired);
      for (const [errno, n] of Object.entries(sent.errors))
        this.outputSendErrors.put({ ...outputLabels, errno }, n);
    });
  }

  private fillWorker(worker: WorkerStatsView): void {
    const labels = { worker: worker.id };
    for (const state of WORKER_STATES)
      this.workerState.put({ ...labels, state }, worker.state === state ? 1 : 0);
    if (worker.startedAt !== null && worker.state !== 'stopped') {
      const at = Date.parse(worker.startedAt);
      if (Number.isFinite(at)) this.workerStartTime.put(labels, at / 1000);
    }
    const { counters, health } = worker;
    this.workerFramesSeen.put(labels, counters.framesSeen);
    for (const [outcome, field] of WORKER_OUTCOMES)
      this.workerFrames.put({ ...labels, outcome }, counters[field] as number);
    for (const [reason, n] of Object.entries(counters.dropsByReason))
      this.workerDropped.put({ ...labels, reason }, n);
    this.workerEgressErrors.put(labels, counters.egressErrors);
    this.workerRingDropped.put(labels, counters.ringDrops);
    this.workerRestarts.put(labels, worker.restarts);
    this.workerResyncs.put(labels, worker.resyncs);
    if (health === null) return;
    this.workerMemory.put(labels, health.rssBytes);
    this.workerCpu.put(labels, health.cpuSeconds);
    this.workerGcCollections.put(labels, health.gcCount);
    this.workerGcPause.put(labels, health.gcTotalMs / 1000);
    this.workerGcMaxPause.put(labels, health.gcMaxPauseMs / 1000);
    this.workerGcLongPauses.put(labels, health.gcPausesOver1Ms);
  }
}
