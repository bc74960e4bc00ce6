import { readFileSync } from 'node:fs';
import {
  BPF_CAPABILITIES_ADVICE,
  BPF_MAP_CREATE,
  BPF_MAP_DELETE_ELEM,
  BPF_MAP_GET_NEXT_KEY,
  BPF_MAP_LOOKUP_ELEM,
  BPF_MAP_UPDATE_ELEM,
  bpfCommand,
  isPermissionDenied,
  MAP_CREATE,
  MAP_ELEM,
  newAttr,
  setPointer,
  writeObjectName,
} from './bpf-syscall.js';
import { ENOENT } from './constants.js';
import { BpfError } from './errors.js';
import { allocateNative, libc, type NativeMemory } from './libc.js';

/** enum bpf_map_type: the kinds mcr's XDP programs use. */
export const MAP_TYPES = {
  hash: 1,
  array: 2,
  prog_array: 3,
  percpu_hash: 5,
  percpu_array: 6,
  array_of_maps: 12,
  hash_of_maps: 13,
  devmap: 14,
  devmap_hash: 25,
} as const;
export type MapType = keyof typeof MAP_TYPES;

export interface MapSpec {
  type: MapType;
  /** Up to 15 letters, digits, '_' or '.' (what bpftool shows). */
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  /** BPF_F_* map flags (e.g. BPF_F_NO_PREALLOC); 0 by default. */
  flags?: number;
  /**
   * array_of_maps and hash_of_maps: a map like the ones its entries will hold (type, key and
   * value sizes, max entries); the kernel copies its shape, the map itself is not kept.
   */
  innerMap?: { readonly fd: number };
}

/** How an update treats an existing entry: BPF_ANY, BPF_NOEXIST (create only), BPF_EXIST (replace only). */
export type UpdateMode = 'any' | 'noexist' | 'exist';
const UPDATE_FLAGS: Record<UpdateMode, number> = { any: 0, noexist: 1, exist: 2 };

let possibleCpus: number | undefined;

/**
 * How many CPUs the kernel may ever bring up (/sys/devices/system/cpu/possible, e.g. "0-3" or
 * "0,2-5"): a per-CPU map's value holds one slot for each, online or not.
 */
export function possibleCpuCount(text?: string): number {
  if (text === undefined && possibleCpus !== undefined) return possibleCpus;
  const list = (text ?? readFileSync('/sys/devices/system/cpu/possible', 'utf8')).trim();
  let count = 0;
  for (const part of list.split(',')) {
    const [first, last] = part.split('-').map(Number);
    if (first === undefined || !Number.isInteger(first))
      throw new Error(`possible CPUs: cannot read "${list}"`);
    count += (last ?? first) - first + 1;
  }
  if (text === undefined) possibleCpus = count;
  return count;
}

/**
 * struct bpf_devmap_val: the interface a devmap entry sends to and, optionally, the program
 * (expected attach type BPF_XDP_DEVMAP) that runs on each frame sent there. Host byte order.
 */
export function devmapValue(ifindex: number, programFd?: number): Uint8Array {
  const value = new Uint8Array(programFd === undefined ? 4 : 8);
  const view = new DataView(value.buffer);
  view.setUint32(0, ifindex, true);
  if (programFd !== undefined) view.setInt32(4, programFd, true);
  return value;
}

/** A 4-byte key or value in host byte order, as array maps and programs use them. */
export function hostU32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value, true);
  return bytes;
}

/** Creates a map; the returned BpfMap owns its fd until close(). */
export function createMap(spec: MapSpec): BpfMap {
  const type = MAP_TYPES[spec.type];
  if (type === undefined) throw new RangeError(`no map type ${String(spec.type)}`);
  const { memory, view } = newAttr(MAP_CREATE.size);
  let fd = -1;
  try {
    view.setUint32(MAP_CREATE.mapType, type, true);
    view.setUint32(MAP_CREATE.keySize, spec.keySize, true);
    view.setUint32(MAP_CREATE.valueSize, spec.valueSize, true);
    view.setUint32(MAP_CREATE.maxEntries, spec.maxEntries, true);
    view.setUint32(MAP_CREATE.mapFlags, spec.flags ?? 0, true);
    if (spec.innerMap !== undefined) view.setUint32(MAP_CREATE.innerMapFd, spec.innerMap.fd, true);
    writeObjectName(memory.bytes, MAP_CREATE.mapName, spec.name);
    fd = bpfCommand(BPF_MAP_CREATE, memory, MAP_CREATE.size);
  } finally {
    memory.free();
  }
  const call = `bpf(BPF_MAP_CREATE ${spec.type} ${spec.name})`;
  if (fd < 0)
    throw mapError(call, -fd, 'check the key and value sizes and that this kernel has the map type');
  try {
    return new BpfMap(fd, spec);
  } catch (err) {
    libc.close(fd);
    throw err;
  }
}

/**
 * An eBPF map held by its fd. Keys and values are bytes in the layout the programs use (host
 * byte order for numbers). One native scratch area per map holds the attr, key and value of each
 * call, so reading counters allocates only the copies it returns.
 */
export class BpfMap {
  readonly fd: number;
  readonly type: MapType;
  readonly name: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  /** Per-CPU maps keep one value per possible CPU, each in a slot rounded up to 8 bytes. */
  readonly perCpu: boolean;
  private readonly slotSize: number;
  private readonly cpus: number;
  private readonly scratch: NativeMemory;
  private readonly view: DataView;
  private readonly keyAt: number;
  private readonly nextKeyAt: number;
  private readonly valueAt: number;
  private closed = false;

  constructor(fd: number, spec: MapSpec) {
    this.fd = fd;
    this.type = spec.type;
    this.name = spec.name;
    this.keySize = spec.keySize;
    this.valueSize = spec.valueSize;
    this.maxEntries = spec.maxEntries;
    this.perCpu = spec.type === 'percpu_array' || spec.type === 'percpu_hash';
    this.cpus = this.perCpu ? possibleCpuCount() : 1;
    this.slotSize = this.perCpu ? roundUp8(spec.valueSize) : spec.valueSize;
    this.keyAt = MAP_ELEM.size;
    this.nextKeyAt = this.keyAt + roundUp8(spec.keySize);
    this.valueAt = this.nextKeyAt + roundUp8(spec.keySize);
    this.scratch = allocateNative(this.valueAt + roundUp8(this.slotSize * this.cpus));
    this.view = new DataView(this.scratch.bytes.buffer, this.scratch.bytes.byteOffset, MAP_ELEM.size);
  }

  /** Writes an entry; on a per-CPU map every CPU's copy gets `value`. */
  update(key: Uint8Array, value: Uint8Array, mode: UpdateMode = 'any'): void {
    this.checkValue(value);
    for (let cpu = 0; cpu < this.cpus; cpu++)
      this.scratch.bytes.set(value, this.valueAt + cpu * this.slotSize);
    this.updateFromScratch(key, mode);
  }

  /** Writes one value per possible CPU (index = CPU number) into a per-CPU map's entry. */
  updatePerCpu(key: Uint8Array, values: readonly Uint8Array[], mode: UpdateMode = 'any'): void {
    this.requirePerCpu('updatePerCpu');
    if (values.length !== this.cpus) {
      throw new RangeError(`map ${this.name}: ${values.length} values for ${this.cpus} possible CPUs`);
    }
    this.scratch.bytes.fill(0, this.valueAt);
    values.forEach((value, cpu) => {
      this.checkValue(value);
      this.scratch.bytes.set(value, this.valueAt + cpu * this.slotSize);
    });
    this.updateFromScratch(key, mode);
  }

  /** A copy of an entry's value, or undefined when there is no such key. Not for per-CPU maps. */
  lookup(key: Uint8Array): Uint8Array | undefined {
    if (this.perCpu) throw new Error(`map ${this.name} is per-CPU: use lookupPerCpu`);
    if (!this.lookupIntoScratch(key)) return undefined;
    return this.scratch.bytes.slice(this.valueAt, this.valueAt + this.valueSize);
  }

  /** Each possible CPU's copy of an entry's value (index = CPU number), or undefined. */
  lookupPerCpu(key: Uint8Array): Uint8Array[] | undefined {
    this.requirePerCpu('lookupPerCpu');
    if (!this.lookupIntoScratch(key)) return undefined;
    return Array.from({ length: this.cpus }, (_, cpu) => {
      const at = this.valueAt + cpu * this.slotSize;
      return this.scratch.bytes.slice(at, at + this.valueSize);
    });
  }

  /** Removes an entry; false when there was none. (Array maps cannot delete: E_BPF_MAP.) */
  delete(key: Uint8Array): boolean {
    this.prepare(key);
    // BPF_MAP_DELETE_ELEM's attr ends at the key: anything after it must be zero (else EINVAL).
    this.view.setBigUint64(MAP_ELEM.value, 0n, true);
    const result = bpfCommand(BPF_MAP_DELETE_ELEM, this.scratch, MAP_ELEM.size);
    if (result === -ENOENT) return false;
    if (result < 0)
      throw mapError(`bpf(BPF_MAP_DELETE_ELEM ${this.name})`, -result, 'array maps cannot delete');
    return true;
  }

  /** The key after `key` in the map's order, the first with undefined; undefined at the end. */
  nextKey(key: Uint8Array | undefined): Uint8Array | undefined {
    if (key === undefined) {
      this.view.setUint32(MAP_ELEM.mapFd, this.fd, true);
      this.view.setBigUint64(MAP_ELEM.key, 0n, true);
    } else {
      this.prepare(key);
    }
    setPointer(this.view, MAP_ELEM.value, this.scratch.address + this.nextKeyAt);
    const result = bpfCommand(BPF_MAP_GET_NEXT_KEY, this.scratch, MAP_ELEM.size);
    if (result === -ENOENT) return undefined;
    if (result < 0)
      throw mapError(`bpf(BPF_MAP_GET_NEXT_KEY ${this.name})`, -result, 'the map could not be walked');
    return this.scratch.bytes.slice(this.nextKeyAt, this.nextKeyAt + this.keySize);
  }

  /** Every key, in the map's order (entries added or removed meanwhile may be seen or not). */
  *keys(): Generator<Uint8Array> {
    for (let key = this.nextKey(undefined); key !== undefined; key = this.nextKey(key)) yield key;
  }

  /** Closes the fd; programs that use the map keep it alive. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
    this.scratch.free();
  }

  private updateFromScratch(key: Uint8Array, mode: UpdateMode): void {
    this.prepare(key);
    this.view.setBigUint64(MAP_ELEM.flags, BigInt(UPDATE_FLAGS[mode]), true);
    const result = bpfCommand(BPF_MAP_UPDATE_ELEM, this.scratch, MAP_ELEM.size);
    if (result < 0) {
      const advice =
        result === -E2BIG ? `the map is full (${this.maxEntries} entries)` : `mode ${mode}; see the errno`;
      throw mapError(`bpf(BPF_MAP_UPDATE_ELEM ${this.name})`, -result, advice);
    }
  }

  private lookupIntoScratch(key: Uint8Array): boolean {
    this.prepare(key);
    const result = bpfCommand(BPF_MAP_LOOKUP_ELEM, this.scratch, MAP_ELEM.size);
    if (result === -ENOENT) return false;
    if (result < 0)
      throw mapError(`bpf(BPF_MAP_LOOKUP_ELEM ${this.name})`, -result, 'the entry could not be read');
    return true;
  }

  /** Fills the attr: fd, key (copied into scratch), value pointer, flags 0. */
  private prepare(key: Uint8Array): void {
    if (this.closed) throw new Error(`map ${this.name} is closed`);
    if (key.byteLength !== this.keySize) {
      throw new RangeError(`map ${this.name}: a key of ${key.byteLength} bytes, expected ${this.keySize}`);
    }
    this.scratch.bytes.set(key, this.keyAt);
    this.view.setUint32(MAP_ELEM.mapFd, this.fd, true);
    setPointer(this.view, MAP_ELEM.key, this.scratch.address + this.keyAt);
    setPointer(this.view, MAP_ELEM.value, this.scratch.address + this.valueAt);
    this.view.setBigUint64(MAP_ELEM.flags, 0n, true);
  }

  private checkValue(value: Uint8Array): void {
    if (value.byteLength !== this.valueSize) {
      throw new RangeError(
        `map ${this.name}: a value of ${value.byteLength} bytes, expected ${this.valueSize}`,
      );
    }
  }

  private requirePerCpu(what: string): void {
    if (!this.perCpu) throw new Error(`map ${this.name} is not per-CPU: ${what} does not apply`);
  }
}

const E2BIG = 7;

function roundUp8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

function mapError(call: string, errno: number, advice: string): BpfError {
  if (isPermissionDenied(errno))
    return new BpfError('E_BPF_PERMISSION', call, errno, BPF_CAPABILITIES_ADVICE);
  return new BpfError('E_BPF_MAP', call, errno, advice);
}
