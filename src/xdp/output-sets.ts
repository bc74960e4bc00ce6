import { devmapValue, hostU32, type BpfMap } from '../sys/bpf-map.js';
import type { InputMaps } from './input-maps.js';
import { createRuleDevmap } from './input-maps.js';
import { egressConstants, encodeOutputValue, type OutputHeader } from './output-header.js';
import { copyNumbers, encodeOutputKey } from './xdp-maps.js';

/** An output of an output set: its header fields, its link, its row of output_counts. */
export interface SetOutput extends OutputHeader {
  ifindex: number;
  counterSlot: number;
}

/**
 * Writes output set `outputSet` of a rule: each output's fields under (set, link, copy) and a
 * new devmap of one slot per output, whose entry i sends to output i's link through the egress
 * program. The devmap is returned, not yet in output_sets; on failure the caller removes what was
 * written (clearOutputSet) and closes the devmap if it got one.
 */
export function writeOutputSet(
  maps: InputMaps,
  outputSet: number,
  outputs: readonly SetOutput[],
  egressProgramFd: number,
  keep: <C extends { close(): void }>(resource: C) => C,
): BpfMap {
  const devmap = keep(createRuleDevmap(Math.max(1, outputs.length)));
  const copies = copyNumbers(outputs.map((o) => o.ifindex));
  outputs.forEach((output, i) => {
    const key = encodeOutputKey({ outputSet, ifindex: output.ifindex, copy: copies[i]! });
    maps.outputs.update(key, encodeOutputValue(egressConstants(output), output.counterSlot));
    devmap.update(hostU32(i), devmapValue(output.ifindex, egressProgramFd));
  });
  return devmap;
}

/** Removes an output set's entries: its devmap from output_sets and its outputs' fields. */
export function clearOutputSet(
  maps: InputMaps,
  outputSet: number,
  outputs: readonly { ifindex: number }[],
): void {
  maps.outputSets.delete(hostU32(outputSet));
  const copies = copyNumbers(outputs.map((o) => o.ifindex));
  outputs.forEach((o, i) =>
    maps.outputs.delete(encodeOutputKey({ outputSet, ifindex: o.ifindex, copy: copies[i]! })),
  );
}
