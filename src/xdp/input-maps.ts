import { createMap, type BpfMap } from '../sys/bpf-map.js';
import type { Closable } from '../sys/closables.js';
import { OUTPUT_VALUE_SIZE } from './output-header.js';
import {
  LINK_COPIES_SIZE,
  MAX_HOST_ADDRESSES,
  MAX_LINKS,
  MAX_OUTPUT_SETS,
  MAX_OUTPUTS,
  MAX_RULES,
  OUTPUT_COUNTS_SIZE,
  OUTPUT_KEY_SIZE,
  RULE_COUNTS_SIZE,
  RULE_DEVMAP_SLOTS,
  RULE_KEY_SIZE,
  RULE_VALUE_SIZE,
  SENT_LOG_SIZE,
} from './xdp-maps.js';

/** The maps of one input interface (xdp-maps.ts describes them). */
export interface InputMaps {
  rules: BpfMap;
  outputSets: BpfMap;
  outputs: BpfMap;
  linkCopies: BpfMap;
  ruleCounts: BpfMap;
  outputCounts: BpfMap;
  hostAddresses: BpfMap;
  sentLog: BpfMap;
}

/**
 * A rule's devmap: output i at key i, each entry an interface and its output's egress program.
 * Every rule's devmap has this key and value, as an ARRAY_OF_MAPS requires of its entries; their
 * sizes may differ (the kernel compares a devmap's max_entries with the template's only for
 * arrays). A broadcast visits every slot, the empty ones too, so a rule's devmap has one slot
 * per output (`slots`); the template has the most a rule may have.
 */
export function createRuleDevmap(slots = RULE_DEVMAP_SLOTS): BpfMap {
  if (!Number.isInteger(slots) || slots < 1 || slots > RULE_DEVMAP_SLOTS)
    throw new RangeError(`a rule's devmap has 1 to ${RULE_DEVMAP_SLOTS} slots, not ${slots}`);
  return createMap({
    type: 'devmap',
    name: 'mcr_outputs',
    keySize: 4,
    valueSize: 8,
    maxEntries: slots,
  });
}

/** Creates the maps; each is registered with `keep` (openAll) as it is made. */
export function createInputMaps(keep: <C extends Closable>(resource: C) => C): InputMaps {
  const rules = keep(
    createMap({
      type: 'hash',
      name: 'mcr_rules',
      keySize: RULE_KEY_SIZE,
      valueSize: RULE_VALUE_SIZE,
      maxEntries: MAX_RULES,
    }),
  );
  // The ARRAY_OF_MAPS takes its entries' shape from a template, which it does not keep.
  const template = createRuleDevmap();
  let outputSets: BpfMap;
  try {
    outputSets = keep(
      createMap({
        type: 'array_of_maps',
        name: 'mcr_output_sets',
        keySize: 4,
        valueSize: 4,
        maxEntries: MAX_OUTPUT_SETS,
        innerMap: template,
      }),
    );
  } finally {
    template.close();
  }
  // Twice the outputs: a rule's old and new output sets both exist while it is updated.
  const outputs = keep(
    createMap({
      type: 'hash',
      name: 'mcr_outputs',
      keySize: OUTPUT_KEY_SIZE,
      valueSize: OUTPUT_VALUE_SIZE,
      maxEntries: 2 * MAX_OUTPUTS,
    }),
  );
  const linkCopies = keep(
    createMap({
      type: 'percpu_hash',
      name: 'mcr_link_copies',
      keySize: 4,
      valueSize: LINK_COPIES_SIZE,
      maxEntries: MAX_LINKS,
    }),
  );
  const ruleCounts = keep(
    createMap({
      type: 'percpu_array',
      name: 'mcr_rule_cnt',
      keySize: 4,
      valueSize: RULE_COUNTS_SIZE,
      maxEntries: MAX_RULES,
    }),
  );
  const outputCounts = keep(
    createMap({
      type: 'percpu_array',
      name: 'mcr_out_cnt',
      keySize: 4,
      valueSize: OUTPUT_COUNTS_SIZE,
      maxEntries: MAX_OUTPUTS,
    }),
  );
  const hostAddresses = keep(
    createMap({
      type: 'hash',
      name: 'mcr_host_addr',
      keySize: 4,
      valueSize: 4,
      maxEntries: MAX_HOST_ADDRESSES,
    }),
  );
  const sentLog = keep(
    createMap({
      type: 'percpu_array',
      name: 'mcr_sent_log',
      keySize: 4,
      valueSize: SENT_LOG_SIZE,
      maxEntries: 1,
    }),
  );
  return { rules, outputSets, outputs, linkCopies, ruleCounts, outputCounts, hostAddresses, sentLog };
}

/** Numbers 0..size-1 handed out and taken back: rule and output slots of the maps. */
export class SlotPool {
  private readonly free: number[];

  constructor(size: number) {
    this.free = Array.from({ length: size }, (_, i) => size - 1 - i);
  }

  get available(): number {
    return this.free.length;
  }

  take(): number | undefined {
    return this.free.pop();
  }

  give(slot: number): void {
    this.free.push(slot);
  }
}
