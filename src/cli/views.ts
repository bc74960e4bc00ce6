import type { OutputView, RuleView, StatsView, WorkerView } from '../protocol/control-api.js';
import { DSCP_NAMES } from '../rules/validate-rule.js';
import { formatCount, formatRate, formatTable } from './table.js';
import { formatAge } from './rate-format.js';

// How mcrctl shows the daemon's answers to a person: aligned tables, one line per rule and one
// per output under it, so each output's path, TTL, DSCP and state are visible at a glance.

const DSCP_BY_VALUE = new Map(Object.entries(DSCP_NAMES).map(([name, value]) => [value, name]));

export function describeRuleInput(r: RuleView): string {
  const vlan = r.input.vlan === null ? '' : ` vlan ${r.input.vlan}`;
  const unicast = r.input.unicast ? ' (unicast)' : '';
  const source = r.input.source === null ? '' : ` from ${r.input.source}`;
  const rtp = r.input.rtp ? ' rtp' : '';
  return `${r.input.interface}${vlan} ${r.input.group}:${r.input.port}${source}${unicast}${rtp}`;
}

function describeOutputTarget(o: OutputView): string {
  return `-> ${o.group}:${o.port}${o.interface ? ` ${o.interface}` : ''}`;
}

/** "raw", "socket", "xdp", "auto: raw", "auto: xdp", "raw: none yet". */
function describePath(o: OutputView): string {
  const inUse = o.path ?? 'none yet';
  return o.mode === 'auto' ? `auto: ${inUse}` : o.path === null ? `${o.mode}: ${inUse}` : o.path;
}

/** "≤16" (a cap on the input's TTL minus one) or "=4" (fixed). */
function describeTtl(o: OutputView): string {
  return o.ttlFixed ? `=${o.ttl}` : `≤${o.ttl}`;
}

function describeDscp(o: OutputView): string {
  if (o.dscp === null) return 'keep';
  const name = DSCP_BY_VALUE.get(o.dscp);
  return name ? `${name} (${o.dscp})` : String(o.dscp);
}

function describeState(state: string, reason: string | null): string {
  return reason ? `${state} (${reason})` : state;
}

export function rulesTable(rules: RuleView[]): string {
  const rows: string[][] = [];
  for (const r of rules) {
    rows.push([
      r.id,
      r.name ?? '-',
      r.origin,
      describeRuleInput(r),
      r.path ?? '',
      '',
      '',
      describeState(r.state, r.reason),
    ]);
    for (const o of r.outputs) {
      rows.push([
        '',
        '',
        '',
        `  ${describeOutputTarget(o)}`,
        describePath(o),
        describeTtl(o),
        describeDscp(o),
        describeState(o.state, o.state === 'active' ? null : o.reason),
      ]);
    }
  }
  return formatTable(['RULE', 'NAME', 'FROM', 'INPUT / OUTPUTS', 'PATH', 'TTL', 'DSCP', 'STATE'], rows);
}

/** name=n pairs of a counter map, or '' when it is empty. */
function pairs(counts: Record<string, number>): string {
  return Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([name, n]) => `${name}=${n}`)
    .join(',');
}

export function statsText(stats: StatsView): string {
  const ruleRows: string[][] = [];
  for (const r of stats.rules) {
    ruleRows.push([
      r.id,
      r.name ?? '-',
      r.path === null ? describeRuleInput(r) : `${describeRuleInput(r)} (${r.path})`,
      formatCount(r.counters.packetsIn),
      formatRate(r.rates.packetsIn),
      formatCount(r.counters.bytesIn),
      pairs(r.counters.drops) || '-',
      lastPacketAge(r.counters.lastPacketAt, stats.time),
    ]);
    r.outputs.forEach((o, i) => {
      const c = r.counters.outputs[i];
      const problems = pairs({ ...(c?.errors ?? {}), ttl_expired: c?.ttlExpired ?? 0 });
      ruleRows.push([
        '',
        '',
        `  ${describeOutputTarget(o)} (${describePath(o)})`,
        formatCount(c?.packets ?? 0),
        formatRate(r.rates.outputs[i] ?? 0),
        formatCount(c?.bytes ?? 0),
        problems || '0',
        '',
      ]);
    });
  }
  const workerRows = stats.workers.map((w) => [
    String(w.id),
    String(w.pid ?? '-'),
    w.state,
    formatCount(w.counters.framesSeen),
    formatRate(w.rates.framesSeen),
    formatCount(w.counters.forwarded),
    formatCount(w.counters.noRule),
    formatCount(w.counters.notIpv4Udp),
    formatCount(w.counters.malformed),
    formatCount(w.counters.fragments),
    formatCount(w.counters.filtered),
    formatCount(w.counters.unsent),
    formatCount(w.counters.egressErrors),
    formatCount(w.counters.ringDrops),
    w.health ? `${(w.health.rssBytes / 1048576).toFixed(0)}M` : '-',
    w.health ? `${w.health.gcCount}/${w.health.gcMaxPauseMs.toFixed(1)}ms` : '-',
    `${(w.rates.cpu * 100).toFixed(1)}%`,
  ]);
  const interfaceRows = stats.interfaces.map((i) => [
    i.name,
    formatCount(i.rxPackets),
    formatCount(i.rxDropped),
    formatCount(i.rxMissed),
    formatCount(i.txPackets),
    formatCount(i.txDropped),
    formatCount(i.txErrors),
  ]);
  const reasons = stats.workers.flatMap((w) =>
    Object.entries(w.counters.dropsByReason).map(([name, n]) => `worker ${w.id} ${name}: ${n}`),
  );
  const rtpRows = stats.rules.flatMap((r) => {
    const h = r.counters.rtp;
    if (h === null) return [];
    return [
      [
        r.id,
        r.name ?? '-',
        formatCount(h.packets),
        formatCount(h.lost),
        formatCount(h.gaps),
        formatCount(h.duplicates),
        formatCount(h.reordered),
        formatCount(h.ssrcChanges),
        formatCount(h.resyncs),
        formatCount(h.notRtp),
      ],
    ];
  });
  const interval =
    stats.rateInterval > 0
      ? `rates over ${stats.rateInterval.toFixed(1)} s`
      : 'rates: not enough samples yet';
  return [
    stats.rules.length === 0
      ? 'no rules'
      : formatTable(
          ['RULE', 'NAME', 'INPUT / OUTPUTS', 'PACKETS>', 'PPS>', 'BYTES>', 'DROPS / ERRORS', 'LAST>'],
          ruleRows,
        ),
    ...(rtpRows.length > 0
      ? [
          '',
          formatTable(
            [
              'RTP STREAM',
              'NAME',
              'RTP>',
              'LOST>',
              'GAPS>',
              'DUPLICATES>',
              'LATE>',
              'SSRC-CHANGES>',
              'RESYNCS>',
              'NOT-RTP>',
            ],
            rtpRows,
          ),
        ]
      : []),
    '',
    formatTable(
      [
        'WORKER',
        'PID',
        'STATE',
        'FRAMES>',
        'FPS>',
        'FORWARDED>',
        'NO-RULE>',
        'NOT-UDP>',
        'MALFORMED>',
        'FRAGMENTS>',
        'FILTERED>',
        'UNSENT>',
        'EGRESS-ERR>',
        'RING-DROPS>',
        'RSS>',
        'GC/MAX-PAUSE>',
        'CPU>',
      ],
      workerRows,
    ),
    ...(interfaceRows.length > 0
      ? [
          '',
          formatTable(
            ['INTERFACE', 'RX>', 'RX-DROPPED>', 'RX-MISSED>', 'TX>', 'TX-DROPPED>', 'TX-ERRORS>'],
            interfaceRows,
          ),
        ]
      : []),
    ...(reasons.length > 0 ? ['', 'drops by reason:', ...reasons.map((r) => `  ${r}`)] : []),
    '',
    `${stats.time}, ${interval}`,
  ].join('\n');
}

export function workersTable(workers: WorkerView[]): string {
  return formatTable(
    [
      'WORKER',
      'PID',
      'STATE',
      'CPU>',
      'USER',
      'CONFINED',
      'NICE>',
      'RULES>',
      'INPUTS',
      'STARTED',
      'RESTARTS>',
      'RESYNCS>',
    ],
    workers.map((w) => [
      String(w.id),
      String(w.pid ?? '-'),
      w.state,
      String(w.cpu),
      w.user,
      // Its own seccomp filter; "no" only where mcr has none for the architecture.
      w.confined === null ? '-' : w.confined ? 'yes' : 'no',
      w.nice === null ? '-' : String(w.nice),
      String(w.rules),
      w.inputs.join(',') || '-',
      w.startedAt ?? '-',
      String(w.restarts),
      String(w.resyncs),
    ]),
  );
}

/** How long before `now` (both ISO 8601) the rule's last packet came: "0.3s", "12m", "never". */
function lastPacketAge(lastPacketAt: string | null, now: string): string {
  return formatAge(lastPacketAt === null ? null : (Date.parse(now) - Date.parse(lastPacketAt)) / 1000);
}
