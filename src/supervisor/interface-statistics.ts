import { readFileSync } from 'node:fs';
import type { InterfaceStatsView } from '../protocol/control-api.js';

/** The kernel's statistics files read for each interface, and the field each becomes. */
const FILES: readonly (readonly [keyof Omit<InterfaceStatsView, 'name'>, string])[] = [
  ['rxPackets', 'rx_packets'],
  ['rxDropped', 'rx_dropped'],
  ['rxMissed', 'rx_missed_errors'],
  ['txPackets', 'tx_packets'],
  ['txDropped', 'tx_dropped'],
  ['txErrors', 'tx_errors'],
];

/**
 * What the kernel counted on each named interface (/sys/class/net/IF/statistics), in mcrd's
 * network namespace; an interface that is not there (yet) is left out. A few small reads per
 * interface, when stats are asked for.
 */
export function interfaceStatistics(names: Iterable<string>): InterfaceStatsView[] {
  const views: InterfaceStatsView[] = [];
  for (const name of new Set(names)) {
    // The name comes from a validated rule, but is still only ever a path component here.
    if (name.includes('/') || name === '.' || name === '..') continue;
    const view: InterfaceStatsView = {
      name,
      rxPackets: 0,
      rxDropped: 0,
      rxMissed: 0,
      txPackets: 0,
      txDropped: 0,
      txErrors: 0,
    };
    try {
      for (const [field, file] of FILES) view[field] = readCounter(name, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // not there (yet)
      throw err;
    }
    views.push(view);
  }
  return views.sort((a, b) => a.name.localeCompare(b.name));
}

function readCounter(name: string, file: string): number {
  const n = Number(readFileSync(`/sys/class/net/${name}/statistics/${file}`, 'utf8').trim());
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}
