// Runs inside a test namespace (a program attaches to an interface of its own namespace):
//   node xdp-counter.js IFNAME PORT native|generic
// Loads a program that counts IPv4/UDP frames to PORT and passes every frame on, attaches it to
// IFNAME through a bpf_link, prints {"attached":…} as one JSON line, then answers commands on
// stdin, one per line, with one JSON line each (or {"error":CODE,…} when it cannot attach):
//   count → {"count":N}      detach → {"detached":true}
// and exits when stdin closes.
import { createInterface } from 'node:readline';
import { attachXdp, type XdpLink, type XdpMode } from '../../src/sys/bpf-link.js';
import { createMap, hostU32, type BpfMap } from '../../src/sys/bpf-map.js';
import { loadProgram, type BpfProgram } from '../../src/sys/bpf-program.js';
import { openAll } from '../../src/sys/closables.js';
import type { BpfError } from '../../src/sys/errors.js';
import { interfaceIndex } from '../../src/sys/interfaces.js';
import { XDP_PASS } from '../../src/xdp/xdp-abi.js';
import { MATCHED_FRAMES, portMatchProgram, sumCounters } from './xdp-test-programs.js';

function say(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

const [ifname = '', portText = '', modeText = 'native'] = process.argv.slice(2);
const ifindex = interfaceIndex(ifname);
if (ifindex === undefined) throw new Error(`no interface ${ifname}`);
const mode = modeText as XdpMode;

/** Map, program and link, all or nothing; a failure is reported as {"error": CODE, …} and ends the process. */
function attach(): { counters: BpfMap; program: BpfProgram; link: XdpLink } {
  try {
    return openAll((keep) => {
      const counters = keep(
        createMap({ type: 'percpu_array', name: 'mcr_t_udp', keySize: 4, valueSize: 8, maxEntries: 2 }),
      );
      const instructions = portMatchProgram(counters, Number(portText), XDP_PASS);
      const program = keep(loadProgram({ name: 'mcr_t_count', kind: 'xdp', instructions }));
      const link = keep(attachXdp(program, ifindex!, mode, ifname));
      return { counters, program, link };
    });
  } catch (err) {
    const { code, errnoName, message } = err as BpfError;
    say({ error: code, errnoName, message });
    process.exit(1);
  }
}

const { counters, program, link } = attach();
say({ attached: true, programId: program.id(), pid: process.pid });

const commands = createInterface({ input: process.stdin });
// The test is done with it, or gone: exiting closes every fd, so nothing stays attached.
commands.on('close', () => process.exit(0));
commands.on('line', (line) => {
  switch (line.trim()) {
    case 'count':
      say({ count: Number(sumCounters(counters.lookupPerCpu(hostU32(MATCHED_FRAMES)))) });
      break;
    case 'detach':
      link.close();
      say({ detached: true });
      break;
  }
});
