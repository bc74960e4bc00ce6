import { interfaceInfo } from '../sys/interfaces.js';
import { missingCapabilities } from '../sys/privileges.js';
import { localPort } from '../sys/socket.js';
import { interfaceDriver, readXdpFeatures } from '../sys/xdp-features.js';
import { XdpInput } from '../xdp/xdp-input.js';
import type { XdpSystem } from './xdp-activation.js';

/**
 * Why this process cannot load and attach XDP programs, or null when it can: bpf(2) needs
 * CAP_BPF for maps, CAP_NET_ADMIN for XDP programs and devmaps, and the verifier takes mcr's
 * programs (pointer arithmetic on packet data) only with CAP_PERFMON (docs/XDP.md, measured).
 */
export function xdpPrivilegeProblem(): string | null {
  const missing = missingCapabilities(['CAP_BPF', 'CAP_PERFMON', 'CAP_NET_ADMIN']);
  if (missing.length === 0) return null;
  return `mcrd lacks ${missing.join(', ')}, which the XDP path needs`;
}

/** The real host behind XdpPaths: XdpInput in native mode, ethtool and the netdev family. */
export function hostXdp(): XdpSystem {
  return {
    privilege: xdpPrivilegeProblem(),
    open: (ifindex, name) => XdpInput.open(ifindex, 'native', name),
    linkFacts: (link) => ({
      driver: interfaceDriver(link.name),
      features: readXdpFeatures([link.ifindex]).get(link.ifindex),
    }),
    source: (name) => {
      const info = interfaceInfo(name);
      return info?.ipv4 === undefined ? undefined : { mac: info.mac, address: info.ipv4 };
    },
    localPort,
  };
}
