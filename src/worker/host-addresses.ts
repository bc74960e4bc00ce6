/**
 * This host's IPv4 addresses, as the supervisor last sent them (host.addresses replaces them
 * wholesale; none until the first). A matched frame sent from one of them is the relay's own copy
 * coming back, or another loop through this host: it is dropped as own_source.
 *
 * Held as signed 32-bit keys (`address | 0`): most addresses are above 2^31, and such a Number
 * is a heap object to V8, boxed again whenever it is passed to a call that is not inlined; a
 * small integer never is. The per-packet check is one Set lookup, and the data path does even
 * that only when a frame's source differs from the previous frame's.
 */
export class HostAddresses {
  private readonly keys = new Set<number>();

  replace(addresses: readonly number[]): void {
    this.keys.clear();
    for (const address of addresses) this.keys.add(address | 0);
  }

  /** `key`: an address as `address | 0`. */
  has(key: number): boolean {
    return this.keys.has(key);
  }

  get size(): number {
    return this.keys.size;
  }
}
