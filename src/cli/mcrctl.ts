import { Command, CommanderError, Option } from 'commander';
import { ControlClient } from '../protocol/control-client.js';
import { errorKind } from '../protocol/error-codes.js';
import { PROTOCOL_VERSION } from '../protocol/json-rpc.js';
import { ConfigInvalid, registerConfigCommands } from './mcrctl-config.js';
import { registerEventsCommand } from './mcrctl-events.js';
import type { MethodName, ParamsOf, ResultOf } from '../protocol/control-api.js';
import { parseOutputList } from '../rules/output-syntax.js';
import { validateRule } from '../rules/validate-rule.js';
import { DEFAULT_SOCKET, packageVersion, socketPathFrom, UsageError } from './package-info.js';
import { registerTraceCommand } from './mcrctl-trace.js';
import { rulesTable, workersTable } from './views.js';
import { registerLiveCommands } from './mcrctl-live.js';
import { endQuietlyWhenReaderLeaves } from './closed-pipe.js';

endQuietlyWhenReaderLeaves();

interface GlobalOptions {
  socket?: string;
  json?: boolean;
}

const program = new Command('mcrctl')
  .description(
    'Control a running mcrd: add and remove relay rules, show counters and workers, watch them live.',
  )
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
      '  mcrctl list\n  mcrctl stats\n  mcrctl top\n  mcrctl --json stats --watch\n  mcrctl remove --name cam1',
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
    'comma-separated GROUP:PORT[:INTERFACE[:MODE]][:ttl=N|:fixed-ttl=N][:dscp=D]; the interface is ' +
      'required for multicast outputs; MODE is auto (default: the XDP path where it is sure to work, ' +
      'else raw egress on Ethernet links, else the UDP socket), raw, socket or xdp (the whole rule in ' +
      'the input driver, or refused with the reason); ttl=N caps the TTL (a copy leaves with the lower of N and the ' +
      "input's TTL minus one, default 16 for groups and 64 for unicast), fixed-ttl=N gives every copy " +
      "TTL N whatever the input's; dscp=D (0-63, or ef, af11..af43, cs0..cs7) marks the copies, " +
      "default: they keep the input's DSCP",
  )
  .option('--input-vlan <id>', 'the 802.1Q VLAN id (1-4094) the input frames carry (default: untagged)')
  .option(
    '--input-source <address>',
    'take the group from this sender only (joins it source-specific, IGMPv3); other senders of the group are left to other rules',
  )
  .option('-n, --name <name>', 'a name to refer to the rule by (letters, digits, . _ -)')
  .option('--unicast-input', 'the input address is a unicast address of this host, not a group')
  .option(
    '--rtp',
    'the input payload is RTP: count its stream health (lost and late packets, gaps, duplicates, SSRC changes) in mcrctl stats',
  )
  .addHelpText(
    'after',
    '\nLoops: a copy leaves with a lower TTL than its input had, a packet whose TTL would reach 0 is\n' +
      "dropped (ttl_expired), and frames sent from this host's own addresses are dropped (own_source),\n" +
      'as a router does. A source that sends with TTL 1 on purpose needs fixed-ttl=N on the outputs\n' +
      'that relay it; such an output no longer shortens a loop through another relay.\n\n' +
      'Examples:\n' +
      '  mcrctl add -i eth0 -g 239.1.1.1 -p 5000 -o 239.2.2.2:6000:eth1 -n cam1\n' +
      '  mcrctl add -i eth0 --input-vlan 100 -g 239.1.1.2 -p 5000 -o 239.2.2.3:6000:eth1:raw:dscp=ef\n' +
      '  mcrctl add -i eth0 -g 239.1.1.3 -p 5000 -o 239.2.2.4:6000:eth1:fixed-ttl=8,10.0.9.7:7000\n' +
      '  mcrctl add -i eth0 -g 232.1.1.1 -p 5000 --input-source 10.0.1.5 -o 239.2.2.5:6000:eth1\n' +
      '  mcrctl add -i eth0 -g 239.1.1.4 -p 5004 --rtp -o 239.2.2.6:6000:eth1',
  )
  .action(
    async (opts: {
      inputInterface: string;
      inputGroup: string;
      inputPort: string;
      outputs: string;
      inputVlan?: string;
      inputSource?: string;
      name?: string;
      unicastInput?: boolean;
      rtp?: boolean;
    }) => {
      const params: ParamsOf<'rules.add'> = {
        inputInterface: opts.inputInterface,
        inputGroup: opts.inputGroup,
        inputPort: numberIfDigits(opts.inputPort),
        outputs: parseOutputList(opts.outputs),
        ...(opts.inputVlan !== undefined ? { inputVlan: numberIfDigits(opts.inputVlan) } : {}),
        ...(opts.inputSource !== undefined ? { inputSource: opts.inputSource } : {}),
        ...(opts.name !== undefined ? { name: opts.name } : {}),
        ...(opts.unicastInput ? { unicastInput: true } : {}),
        ...(opts.rtp ? { rtp: true } : {}),
      };
      // Checked here first: a rule that cannot be valid is bad usage (exit 2), whoever finds it.
      validateRule(params);
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

registerLiveCommands(program, {
  call: (method, params) => call(method, params),
  print: (json, text) => print(json, text),
  socketPath: () => socketPathFrom(program.opts<GlobalOptions>().socket),
  json: () => program.opts<GlobalOptions>().json === true,
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
    const daemon = await connect();
    print(
      { client: { version: packageVersion(), protocol: PROTOCOL_VERSION }, daemon },
      () =>
        `mcrctl ${packageVersion()} (protocol ${PROTOCOL_VERSION})\nmcrd   ${daemon.version} (protocol ${daemon.protocol}, node ${daemon.node})`,
    );
  });

program
  .command('log-level')
  .description("show or set the log level of mcrd's supervisor and workers, in force at once")
  .argument('[action]', 'get (default) or set')
  .argument('[level]', 'with set: fatal, error, warn, info, debug or trace')
  .addOption(
    new Option('-c, --component <name>', 'with set: only this component (default: both)').choices([
      'supervisor',
      'workers',
    ]),
  )
  .action(
    async (
      action: string | undefined,
      level: string | undefined,
      opts: { component?: 'supervisor' | 'workers' },
    ) => {
      let levels;
      if (action === undefined || action === 'get') {
        if (level !== undefined) throw usage('log-level get takes no level');
        levels = await call('log.get');
      } else if (action === 'set') {
        if (level === undefined)
          throw usage('log-level set needs a level: fatal, error, warn, info, debug or trace');
        levels = await call('log.set', { level, ...(opts.component ? { component: opts.component } : {}) });
      } else throw usage(`log-level ${action}: expected get or set`);
      print(levels, () => `supervisor ${levels.supervisor}\nworkers    ${levels.workers}`);
    },
  );

registerConfigCommands(program, {
  call: (method, params) => call(method, params),
  print: (json, text) => print(json, text),
});

registerTraceCommand(program, {
  connect: async () => {
    await connect();
    return client!;
  },
  json: () => program.opts<GlobalOptions>().json === true,
  print: (json, text) => print(json, text),
});

registerEventsCommand(program, {
  connect: async () => {
    await connect();
    return client!;
  },
  json: () => program.opts<GlobalOptions>().json === true,
});

/** Digits become a number; anything else goes on as typed, for validation to name it. */
function numberIfDigits(text: string): number {
  return (/^\d{1,9}$/.test(text) ? Number(text) : text) as number;
}

let client: ControlClient | undefined;
let daemonVersion: ResultOf<'version'> | undefined;

/**
 * Connects once and says which protocol this mcrctl speaks: a daemon that speaks another answers
 * E_PROTOCOL_MISMATCH, one clear sentence, before any command could fail in a confusing way.
 */
async function connect(): Promise<ResultOf<'version'>> {
  const globals = program.opts<GlobalOptions>();
  client ??= await ControlClient.open(socketPathFrom(globals.socket));
  daemonVersion ??= await client.call('version', {
    protocol: PROTOCOL_VERSION,
    client: `mcrctl ${packageVersion()}`,
  });
  return daemonVersion;
}

async function call<M extends MethodName>(method: M, params?: ParamsOf<M>): Promise<ResultOf<M>> {
  await connect();
  return client!.call(method, params);
}

function print(json: unknown, text: () => string): void {
  const globals = program.opts<GlobalOptions>();
  process.stdout.write(`${globals.json ? JSON.stringify(json, null, 2) : text()}\n`);
}

function usage(message: string): UsageError {
  return new UsageError('E_USAGE', message);
}

function fail(err: unknown): number {
  const globals = program.opts<GlobalOptions>();
  const e = err as Error & { code?: string; field?: string };
  const code = e.code ?? 'E_INTERNAL';
  // Bad usage, whoever found it (mcrctl itself or mcrd): a request that cannot be right as written.
  const usageProblem = err instanceof UsageError || errorKind(code) === 'usage';
  if (globals.json) {
    const problems = err instanceof ConfigInvalid ? { problems: err.problems } : {};
    const error = { code, message: e.message, field: e.field ?? null, ...problems };
    process.stdout.write(`${JSON.stringify({ error }, null, 2)}\n`);
  } else {
    // A failed system call's message starts with its errno name, which is already the code.
    const message = e.message.startsWith(`${code}: `) ? e.message.slice(code.length + 2) : e.message;
    process.stderr.write(`mcrctl: ${code}: ${message}\n`);
  }
  return usageProblem ? 2 : 1;
}

async function main(): Promise<number> {
  try {
    await program.parseAsync();
    // A command may set its own status (mcrctl trace: how its stream ended).
    return Number(process.exitCode ?? 0);
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
