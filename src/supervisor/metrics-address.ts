import { isIP } from 'node:net';

/** Where the metrics endpoint listens: an IP address of this host (never a name) and a TCP port. */
export interface MetricsAddress {
  host: string;
  port: number;
  /** As the operator wrote it, canonical: "127.0.0.1:9464", "[::1]:9464". */
  text: string;
}

export type MetricsAddressResult = { ok: true; address: MetricsAddress } | { ok: false; why: string };

/** What every refusal says is allowed, so the operator can copy a working form. */
export const METRICS_ADDRESS_FORM =
  'HOST:PORT with an IP address and a TCP port 1-65535, such as 127.0.0.1:9464, [::1]:9464 or 0.0.0.0:9464';

/**
 * Reads HOST:PORT. The host must be an address, not a name: mcrd runs as root and resolves no
 * names to decide where it listens (a name could point elsewhere tomorrow). IPv6 goes in
 * brackets, as in a URL, so the port is never mistaken for part of the address.
 */
export function parseMetricsAddress(value: string): MetricsAddressResult {
  const bracketed = /^\[([^\]]*)\]:(\d{1,5})$/.exec(value);
  const plain = /^([^:[\]]*):(\d{1,5})$/.exec(value);
  const match = bracketed ?? plain;
  if (!match) {
    if (/^\d{1,5}$/.test(value)) return { ok: false, why: `has no address: write 127.0.0.1:${value}` };
    if (isIP(value) === 6)
      return { ok: false, why: 'is an IPv6 address without a port: write [ADDRESS]:PORT' };
    return { ok: false, why: 'is not HOST:PORT' };
  }
  const host = match[1]!;
  const port = Number(match[2]);
  const family = isIP(host);
  if (bracketed ? family !== 6 : family !== 4) {
    const what =
      host === '' ? 'an empty address' : `${host}, which is not an IP${bracketed ? 'v6' : 'v4'} address`;
    return { ok: false, why: `has ${what} (names are not resolved)` };
  }
  if (port < 1 || port > 65535) return { ok: false, why: `has port ${port}, outside 1-65535` };
  return { ok: true, address: { host, port, text: bracketed ? `[${host}]:${port}` : `${host}:${port}` } };
}
