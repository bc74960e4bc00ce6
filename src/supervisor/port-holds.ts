import type { Logger } from 'pino';
import { ipv4ToString } from '../packet/ipv4-address.js';
import { EADDRINUSE } from '../sys/constants.js';
import { SysError } from '../sys/errors.js';
import { dropAll, attachFilter } from '../sys/socket-filter.js';
import { bindIpv4, closeFd, openUdpSocket, setBufferSize } from '../sys/socket.js';

/**
 * UDP ports held on this host's addresses for unicast inputs. Traffic relayed from a unicast
 * input is addressed to this host; with no socket on its port the kernel answers every packet
 * with ICMP port unreachable, and the sender sees errors. A held socket takes the port and
 * discards what arrives (a filter drops it before it is queued, so it costs no memory; the
 * kernel counts those in the UDP InErrors statistic).
 */
export class PortHolds {
  private readonly holds = new Map<string, { fd: number | null; rules: number }>();
  private readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
  }

  /** Takes a reference on (address, port), binding a socket to it with the first one. */
  hold(address: number, port: number): void {
    const key = `${ipv4ToString(address)}:${port}`;
    const existing = this.holds.get(key);
    if (existing) {
      existing.rules++;
      return;
    }
    this.holds.set(key, { fd: this.bind(address, port, key), rules: 1 });
  }

  release(address: number, port: number): void {
    const key = `${ipv4ToString(address)}:${port}`;
    const entry = this.holds.get(key);
    if (!entry || --entry.rules > 0) return;
    this.holds.delete(key);
    if (entry.fd !== null) closeFd(entry.fd);
  }

  closeAll(): void {
    for (const entry of this.holds.values()) if (entry.fd !== null) closeFd(entry.fd);
    this.holds.clear();
  }

  /** The held socket, or null when another socket of this host already has the port (the kernel is quiet then too). */
  private bind(address: number, port: number, key: string): number | null {
    const fd = openUdpSocket(`port hold ${key}`);
    try {
      attachFilter(fd, dropAll(), `port hold ${key}`);
      setBufferSize(fd, 'receive', 0, false);
      bindIpv4(fd, address, port);
      return fd;
    } catch (err) {
      closeFd(fd);
      if (err instanceof SysError && err.errno === EADDRINUSE) {
        this.log.info({ port: key }, 'unicast input port already has a socket on this host; not holding it');
        return null;
      }
      throw err;
    }
  }
}
