import { BPF_XDP, type BpfProgram } from './bpf-program.js';
import {
  BPF_CAPABILITIES_ADVICE,
  BPF_LINK_CREATE,
  bpfCommand,
  isPermissionDenied,
  LINK_CREATE,
  newAttr,
} from './bpf-syscall.js';
import { BpfError } from './errors.js';
import { OwnedFd } from './closables.js';

/**
 * Attaching XDP programs to interfaces through a bpf_link (BPF_LINK_CREATE). Unlike the netlink
 * attachment (`ip link set dev X xdp …`), a link belongs to its fd: closing it, or the process
 * dying for any reason, detaches the program. So a crashed mcrd leaves no program behind to
 * swallow traffic, and another tool cannot replace mcr's program by accident (nor mcr another's:
 * an interface that has a program already refuses the link, EBUSY).
 */

/** native: in the driver, before an skb exists (XDP_FLAGS_DRV_MODE); generic: after (XDP_FLAGS_SKB_MODE). */
export type XdpMode = 'native' | 'generic';
const XDP_FLAGS: Record<XdpMode, number> = { generic: 1 << 1, native: 1 << 2 };

// errnos a driver or the core answers an attach with.
const ENODEV = 19;
const EINVAL = 22;
const EBUSY = 16;
const EEXIST = 17;
const ERANGE = 34;
const EOPNOTSUPP = 95;

/**
 * Attaches `program` (kind xdp) to the interface with `ifindex` in this process's network
 * namespace. The program stays attached while the returned link is open.
 */
export function attachXdp(
  program: BpfProgram,
  ifindex: number,
  mode: XdpMode,
  interfaceName?: string,
): XdpLink {
  const where = interfaceName ?? `ifindex ${ifindex}`;
  const { memory, view } = newAttr(LINK_CREATE.size);
  let fd = -1;
  try {
    view.setUint32(LINK_CREATE.progFd, program.fd, true);
    view.setUint32(LINK_CREATE.targetIfindex, ifindex, true);
    view.setUint32(LINK_CREATE.attachType, BPF_XDP, true);
    view.setUint32(LINK_CREATE.flags, XDP_FLAGS[mode], true);
    fd = bpfCommand(BPF_LINK_CREATE, memory, LINK_CREATE.size);
  } finally {
    memory.free();
  }
  if (fd < 0) {
    const call = `bpf(BPF_LINK_CREATE ${program.name} on ${where}, ${mode})`;
    if (isPermissionDenied(-fd)) throw new BpfError('E_BPF_PERMISSION', call, -fd, BPF_CAPABILITIES_ADVICE);
    throw new BpfError('E_BPF_ATTACH', call, -fd, attachAdvice(-fd, where, mode));
  }
  return new XdpLink(fd, ifindex, mode, program.name);
}

function attachAdvice(errno: number, where: string, mode: XdpMode): string {
  switch (errno) {
    case EBUSY:
    case EEXIST:
      return `${where} already has an XDP program; mcr leaves another program attached`;
    case EOPNOTSUPP:
      return mode === 'native'
        ? `the driver of ${where} has no native XDP; generic mode works on any interface, more slowly`
        : `${where} cannot run XDP programs`;
    case ENODEV:
      return `no interface ${where} in this network namespace`;
    case ERANGE:
      return `the MTU of ${where} (or of its veth peer) is too large for XDP in ${mode} mode`;
    case EINVAL:
      return `the driver of ${where} refused the program in ${mode} mode (on veth: more queues than its peer has)`;
    default:
      return `the program could not be attached to ${where}`;
  }
}

/** An attached XDP program; close() detaches it (the link's last fd closes). */
export class XdpLink extends OwnedFd {
  readonly ifindex: number;
  readonly mode: XdpMode;
  readonly programName: string;

  constructor(fd: number, ifindex: number, mode: XdpMode, programName: string) {
    super(fd);
    this.ifindex = ifindex;
    this.mode = mode;
    this.programName = programName;
  }
}
