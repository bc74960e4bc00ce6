import { Command, CommanderError, Option } from 'commander';
import { ClientError, ControlClient } from '../protocol/control-client.js';
import type {
  MethodName,
  ParamsOf,
  ResultOf,
  RuleView,
  StatsView,
  WorkerView,
} from '../protocol/control-api.js';
import { parseOutputList } from '../rules/output-syntax.js';
import { RuleError } from '../rules/rule-error.js';
import { validatePort } from '../rules/validate-rule.js';
import { DEFAULT_SOCKET, packageVersion, socketPathFrom } from './package-info.js';
import { formatCount, formatRate, formatTable } from './table.js';

interface GlobalOptions {
  socket?: string;
  json?: boolean;
}

const program = new Command('mcrctl')
  .description('Control a running mcrd: add and remove relay rules, show counters and workers.')
  .version(packageVersion(), '-V, --client-version', 'print the version of this mcrctl')
  .option('-s, --socket <path>', `mcrd control socket (default: $MCR_SOCKET or ${DEFAULT_SOCKET})`)
  .option('-j, --json', "print the daemon's answer as JSON instead of tables")
  .exitOverride()
  .addHelpText(
    'after',
    '\nExit status: 0 on success, 1 when mcrd reports an error or cannot be reached, 2 on bad usage.\n\n' +
      'Examples:\n' +
      '  mcrctl add --input-interface eth0 --input-group 239.1.1.1 --input-port 5000 \\\n' +
      '             --outputs 239.2.2.2:6000:eth1,10.0.9.7:7000:eth2 --name cam1\n' +
      '  mcrctl list\n  mcrctl stats\n  mcrctl remove --name cam1',
  );

program
  .command('add')
  .description('add a rule: packets to GROUP:PORT on the input interface are re-sent to every output')
  .requiredOption('-i, --input-interface <ifname>', 'interface the traffic arrives on')
  .requiredOption(
    '-g, --input-group <address>',
    "multicast group (or this host's address with --unicast-input)",
  )
  .requiredOption('-p, --input-port <port>', 'UDP destination port of the input traffic')
  .requiredOption(
    '-o, --outputs <list>',
    'comma-separated GROUP:PORT[:INTERFACE[:MODE]]; the interface is required for multicast outputs; ' +
      'MODE is auto (default: raw egress on Ethernet links, else the UDP socket), raw or socket',
  )
  .option('-n, --name <name>', 'a name to refer to the rule by (letters, digits, . _ -)')
  .option('--unicast-input', 'the input address is a unicast address of this host, not a group')
  .action(
    async (opts: {
      inputInterface: string;
      inputGroup: string;
      inputPort: string;
      outputs: string;
      name?: string;
      unicastInput?: boolean;
    }) => {
      const params: ParamsOf<'rules.add'> = {
        inputInterface: opts.inputInterface,
        inputGroup: opts.inputGroup,
        inputPort: validatePort(
          /^\d{1,5}$/.test(opts.inputPort) ? Number(opts.inputPort) : opts.inputPort,
          'input-port',
        ),
        outputs: parseOutputList(opts.outputs),
        ...(opts.name !== undefined ? { name: opts.name } : {}),
        ...(opts.unicastInput ? { unicastInput: true } : {}),
      };
      const { rule } = await call('rules.add', params);
      print(
        { rule },
        () => `added rule ${rule.id}${rule.name ? ` (${rule.name})` : ''}\n${rulesTable([rule])}`,
      );
    },
  );

program
  .command('remove')
  .description('remove a rule by its id or name; its flow stops, other rules are untouched')
  .addOption(new Option('-r, --rule-id <id>', 'the rule id shown by mcrctl list').conflicts('name'))
  .option('-n, --name <name>', 'the rule name')
  .action(async (opts: { ruleId?: string; name?: string }) => {
    if (opts.ruleId === undefined && opts.name === undefined) throw usage('give --rule-id ID or --name NAME');
    const { removed } = await call(
      'rules.remove',
      opts.ruleId !== undefined ? { id: opts.ruleId } : { name: opts.name! },
    );
    print({ removed }, () => `removed rule ${removed.id}${removed.name ? ` (${removed.name})` : ''}`);
  });

program
  .command('list')
  .description('list the rules')
  .action(async () => {
    const { rules } = await call('rules.list');
    print({ rules }, () => (rules.length === 0 ? 'no rules' : rulesTable(rules)));
  });

program
  .command('stats')
  .description('show per-rule and per-worker counters with rates')
  .action(async () => {
    const stats = await call('stats.get');
    print(stats, () => statsText(stats));
  });

program
  .command('workers')
  .description('list the worker processes')
  .action(async () => {
    const { workers } = await call('workers.list');
    print({ workers }, () => workersTable(workers));
  });

program
  .command('ping')
  .description('check that mcrd answers')
  .action(async () => {
    const started = process.hrtime.bigint();
    const result = await call('ping');
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    print(
      { ...result, latencyMs: ms },
      () => `mcrd pid ${result.pid} answered in ${ms.toFixed(2)} ms (up ${result.uptimeSeconds} s)`,
    );
  });

program
  .command('version')
  .description('show the versions of mcrctl and mcrd and the protocol they speak')
  .action(async () => {
    const result = await call('version');
    print(
      { client: packageVersion(), daemon: result },
      () =>
        `mcrctl ${packageVersion()}\nmcrd   ${result.version} (protocol ${result.protocol}, node ${result.node})`,
    );
  });

let client: ControlClient | undefined;

async function call<M extends MethodName>(method: M, params?: ParamsOf<M>): Promise<ResultOf<M>> {
  const globals = program.opts<GlobalOptions>();
  client ??= await ControlClient.open(socketPathFrom(globals.socket));
  return client.call(method, params);
}

function print(json: unknown, text: () => string): void {
  const globals = program.opts<GlobalOptions>();
  process.stdout.write(`${globals.json ? JSON.stringify(json, null, 2) : text()}\n`);
}

function rulesTable(rules: RuleView[]): string {
  const rows = rules.map((r) => [
    r.id,
    r.name ?? '-',
    r.input.interface,
    `${r.input.group}:${r.input.port}`,
    r.outputs.map((o) => `${o.group}:${o.port}${o.interface ? `:${o.interface}` : ''}`).join(','),
    r.reason ? `${r.state} (${r.reason})` : r.state,
  ]);
  return formatTable(['ID', 'NAME', 'INPUT-IF', 'INPUT', 'OUTPUTS', 'STATE'], rows);
}

function statsText(stats: StatsView): string {
  const ruleRows: string[][] = [];
  for (const r of stats.rules) {
    ruleRows.push([
      r.id,
      r.name ?? '-',
      `${r.input.interface} ${r.input.group}:${r.input.port}`,
      formatCount(r.counters.packetsIn),
      formatRate(r.rates.packetsIn),
      formatCount(r.counters.bytesIn),
      '',
    ]);
    r.outputs.forEach((o, i) => {
      const c = r.counters.outputs[i];
      const errors = Object.entries(c?.errors ?? {})
        .map(([name, n]) => `${name}=${n}`)
        .join(',');
      ruleRows.push([
        '',
        '',
        `  -> ${o.group}:${o.port}${o.interface ? `:${o.interface}` : ''}`,
        formatCount(c?.packets ?? 0),
        formatRate(r.rates.outputs[i] ?? 0),
        '',
        errors || '0',
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
    formatCount(w.counters.egressErrors),
    formatCount(w.counters.ringDrops),
    w.health ? `${(w.health.rssBytes / 1048576).toFixed(0)}M` : '-',
    w.health ? `${w.health.gcCount}/${w.health.gcMaxPauseMs.toFixed(1)}ms` : '-',
  ]);
  const reasons = stats.workers.flatMap((w) =>
    Object.entries(w.counters.dropsByReason).map(([name, n]) => `worker ${w.id} ${name}: ${n}`),
  );
  const interval =
    stats.rateInterval > 0
      ? `rates over ${stats.rateInterval.toFixed(1)} s`
      : 'rates: not enough samples yet';
  return [
    stats.rules.length === 0
      ? 'no rules'
      : formatTable(['RULE', 'NAME', 'INPUT / OUTPUT', 'PACKETS>', 'PPS>', 'BYTES>', 'ERRORS'], ruleRows),
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
        'EGRESS-ERR>',
        'RING-DROPS>',
        'RSS>',
        'GC/MAX-PAUSE>',
      ],
      workerRows,
    ),
    ...(reasons.length > 0 ? ['', 'drops by reason:', ...reasons.map((r) => `  ${r}`)] : []),
    '',
    `${stats.time}, ${interval}`,
  ].join('\n');
}

function workersTable(workers: WorkerView[]): string {
  return formatTable(
    ['WORKER', 'PID', 'STATE', 'CPU>', 'USER', 'RULES>', 'INPUTS', 'STARTED', 'RESTARTS>', 'RESYNCS>'],
    workers.map((w) => [
      String(w.id),
      String(w.pid ?? '-'),
      w.state,
      String(w.cpu),
      w.user,
      String(w.rules),
      w.inputs.join(',') || '-',
      w.startedAt ?? '-',
      String(w.restarts),
      String(w.resyncs),
    ]),
  );
}

class UsageError extends Error {
  readonly code = 'E_USAGE';
}

function usage(message: string): UsageError {
  return new UsageError(message);
}

function fail(err: unknown): number {
  const globals = program.opts<GlobalOptions>();
  const usageProblem = err instanceof UsageError || err instanceof RuleError;
  const e = err as Error & { code?: string; field?: string };
  const code = e.code ?? 'E_INTERNAL';
  if (globals.json) {
    process.stdout.write(
      `${JSON.stringify({ error: { code, message: e.message, field: e.field ?? null } }, null, 2)}\n`,
    );
  } else {
    process.stderr.write(`mcrctl: ${code}: ${e.message}\n`);
  }
  if (usageProblem) return 2;
  if (err instanceof ClientError) return 1;
  return 1;
}

async function main(): Promise<number> {
  try {
    await program.parseAsync();
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed the message (or help/version); map its outcome to our exit codes.
      return err.exitCode === 0 ? 0 : 2;
    }
    return fail(err);
  } finally {
    client?.close();
  }
}

main().then((code) => {
  process.exitCode = code;
});
