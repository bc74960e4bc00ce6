import { allocateNative, type NativeMemory } from './libc.js';

/**
 * Classic BPF, the small filter language of socket filters (SO_ATTACH_FILTER) and seccomp: an
 * accumulator, loads, conditional forward jumps and returns. Programs are written with labels and
 * assembled into struct sock_filter arrays.
 */

/** struct sock_filter: code (u16), jt (u8), jf (u8), k (u32). */
export interface FilterInstruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

// Opcodes (linux/filter.h): class | size | mode / operation | source.
export const BPF_LD_W_ABS = 0x20; // A = 32-bit word at offset k (or an ancillary value)
export const BPF_JEQ_K = 0x15; // if A == k
export const BPF_JGE_K = 0x35; // if A >= k
export const BPF_JSET_K = 0x45; // if A & k
export const BPF_RET_K = 0x06; // return k

const INSTRUCTION_SIZE = 8;
const MAX_JUMP = 255;

/** A jump target: a label defined later in the program, or 0 for the next instruction. */
export type Target = string | 0;

type Step = { label: string } | { code: number; k: number; jt: Target; jf: Target };

/** Builds a program with named forward jumps (classic BPF only jumps forward, at most 255). */
export class FilterBuilder {
  private readonly steps: Step[] = [];

  load(offset: number): this {
    return this.op(BPF_LD_W_ABS, offset);
  }

  /** Jumps to `ifTrue` when the test holds, else to `ifFalse` (0: the next instruction). */
  jump(code: number, k: number, ifTrue: Target, ifFalse: Target = 0): this {
    this.steps.push({ code, k: k >>> 0, jt: ifTrue, jf: ifFalse });
    return this;
  }

  ret(value: number): this {
    return this.op(BPF_RET_K, value);
  }

  label(name: string): this {
    this.steps.push({ label: name });
    return this;
  }

  assemble(): FilterInstruction[] {
    const positions = new Map<string, number>();
    let pc = 0;
    for (const step of this.steps) {
      if ('label' in step) positions.set(step.label, pc);
      else pc++;
    }
    const program: FilterInstruction[] = [];
    for (const step of this.steps) {
      if ('label' in step) continue;
      const at = program.length;
      const offset = (target: Target): number => {
        if (target === 0) return 0;
        const to = positions.get(target);
        if (to === undefined) throw new Error(`classic BPF: no label ${target}`);
        const distance = to - at - 1;
        if (distance < 0 || distance > MAX_JUMP)
          throw new Error(`classic BPF: jump to ${target} out of range`);
        return distance;
      };
      program.push({ code: step.code, k: step.k, jt: offset(step.jt), jf: offset(step.jf) });
    }
    return program;
  }

  private op(code: number, k: number): this {
    this.steps.push({ code, k: k >>> 0, jt: 0, jf: 0 });
    return this;
  }
}

/** The program in the kernel's layout (little-endian on every architecture mcr runs on). */
export function encodeFilter(program: readonly FilterInstruction[]): Uint8Array {
  const bytes = new Uint8Array(program.length * INSTRUCTION_SIZE);
  const view = new DataView(bytes.buffer);
  program.forEach((ins, i) => {
    const at = i * INSTRUCTION_SIZE;
    view.setUint16(at, ins.code, true);
    view.setUint8(at + 2, ins.jt);
    view.setUint8(at + 3, ins.jf);
    view.setUint32(at + 4, ins.k >>> 0, true);
  });
  return bytes;
}

/**
 * struct sock_fprog { unsigned short len; struct sock_filter *filter; } in native memory, with
 * the instructions beside it; the caller frees both once the kernel has copied them.
 */
export function nativeProgram(program: readonly FilterInstruction[]): NativeMemory {
  const code = encodeFilter(program);
  const memory = allocateNative(16 + code.byteLength);
  const view = new DataView(memory.bytes.buffer, memory.bytes.byteOffset, 16);
  view.setUint16(0, program.length, true);
  view.setBigUint64(8, BigInt(memory.address + 16), true);
  memory.bytes.set(code, 16);
  return memory;
}
