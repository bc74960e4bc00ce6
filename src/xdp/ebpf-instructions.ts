/**
 * eBPF instructions as the kernel reads them (Documentation/bpf/standardization/instruction-set.rst,
 * include/uapi/linux/bpf.h): 8 bytes each, little-endian on every architecture mcr runs on —
 *   byte 0 opcode, byte 1 dst_reg (low nibble) and src_reg (high nibble), bytes 2-3 offset (s16),
 *   bytes 4-7 immediate (s32).
 * LD_IMM64 takes two slots; the second holds the upper 32 bits of the immediate. This file knows
 * single instructions only; ebpf-assembler.ts turns a program with labels into them.
 */

/** An assembly error: mcr generated a program that cannot be encoded (a bug in the generator). */
export class EbpfAssemblyError extends Error {
  readonly code = 'E_BPF_ASSEMBLY';

  constructor(message: string) {
    super(`eBPF assembly: ${message}`);
    this.name = 'EbpfAssemblyError';
  }
}

/**
 * A register. r0: helper and program return value; r1-r5: helper arguments, clobbered by every
 * call; r6-r9: kept across calls; r10: the read-only frame pointer (512 bytes of stack below it).
 * Registers are objects, not numbers, so that an operand is plainly a register or an immediate.
 */
export interface Register {
  readonly index: number;
  readonly name: string;
}

function register(index: number): Register {
  return Object.freeze({ index, name: `r${index}` });
}

export const R0 = register(0);
export const R1 = register(1);
export const R2 = register(2);
export const R3 = register(3);
export const R4 = register(4);
export const R5 = register(5);
export const R6 = register(6);
export const R7 = register(7);
export const R8 = register(8);
export const R9 = register(9);
export const R10 = register(10);

/** A source operand: a register (BPF_X) or a 32-bit immediate (BPF_K). */
export type Operand = Register | number;

// Instruction classes (the low 3 bits of the opcode).
export const BPF_LD = 0x00;
export const BPF_LDX = 0x01;
export const BPF_ST = 0x02;
export const BPF_STX = 0x03;
export const BPF_ALU = 0x04;
export const BPF_JMP = 0x05;
export const BPF_JMP32 = 0x06;
export const BPF_ALU64 = 0x07;

// Memory access: size and mode.
export const BPF_W = 0x00;
export const BPF_H = 0x08;
export const BPF_B = 0x10;
export const BPF_DW = 0x18;
export const BPF_IMM = 0x00;
export const BPF_MEM = 0x60;
export const BPF_ATOMIC = 0xc0;

// Source of the operand.
export const BPF_K = 0x00;
export const BPF_X = 0x08;

// ALU operations beyond the table below, and jump operations that are not conditions.
export const BPF_NEG = 0x80;
export const BPF_END = 0xd0;
export const BPF_TO_LE = 0x00;
export const BPF_TO_BE = 0x08;
export const BPF_JA = 0x00;
export const BPF_CALL = 0x80;
export const BPF_EXIT = 0x90;

/** src_reg of LD_IMM64: the immediate is a map's fd, replaced by the map at load time. */
export const BPF_PSEUDO_MAP_FD = 1;
/** src_reg of LD_IMM64: a map's fd and an offset into its (first) value: a direct pointer. */
export const BPF_PSEUDO_MAP_VALUE = 2;

/** ALU operations (BPF_OP), by the names the kernel's assembly syntax gives them. */
export const ALU_OPERATIONS = {
  add: 0x00,
  sub: 0x10,
  mul: 0x20,
  div: 0x30,
  or: 0x40,
  and: 0x50,
  lsh: 0x60,
  rsh: 0x70,
  mod: 0x90,
  xor: 0xa0,
  mov: 0xb0,
  arsh: 0xc0,
} as const;
export type AluOperation = keyof typeof ALU_OPERATIONS;

/** Conditional jumps (BPF_OP); jlt, jle, jgt, jge are unsigned, the js* forms signed. */
export const JUMP_CONDITIONS = {
  jeq: 0x10,
  jgt: 0x20,
  jge: 0x30,
  jset: 0x40,
  jne: 0x50,
  jsgt: 0x60,
  jsge: 0x70,
  jlt: 0xa0,
  jle: 0xb0,
  jslt: 0xc0,
  jsle: 0xd0,
} as const;
export type JumpCondition = keyof typeof JUMP_CONDITIONS;

/** Helper functions by id (enum bpf_func_id); the ones mcr's XDP programs use. */
export const HELPERS = {
  map_lookup_elem: 1,
  map_update_elem: 2,
  map_delete_elem: 3,
  ktime_get_ns: 5,
  get_prandom_u32: 7,
  get_smp_processor_id: 8,
  redirect: 23,
  csum_diff: 28,
  xdp_adjust_head: 44,
  redirect_map: 51,
  xdp_adjust_meta: 54,
  xdp_adjust_tail: 65,
  fib_lookup: 69,
  xdp_get_buff_len: 188,
} as const;
export type HelperName = keyof typeof HELPERS;

/** Bytes moved by a load or store. */
export type Width = 1 | 2 | 4 | 8;
const SIZE_OF_WIDTH: Record<Width, number> = { 1: BPF_B, 2: BPF_H, 4: BPF_W, 8: BPF_DW };

export const INSTRUCTION_SIZE = 8;

/** One 8-byte slot. `src` is a register number or a pseudo value (LD_IMM64, CALL), 0-15. */
export interface Instruction {
  readonly opcode: number;
  readonly dst: number;
  readonly src: number;
  readonly offset: number;
  readonly imm: number;
}

export function sizeOf(width: Width): number {
  const size = SIZE_OF_WIDTH[width];
  if (size === undefined)
    throw new EbpfAssemblyError(`${String(width)} is not a width of 1, 2, 4 or 8 bytes`);
  return size;
}

/**
 * An immediate as the s32 the kernel stores. `signExtended`: the kernel widens it to 64 bits
 * (ALU64, 64-bit jumps, 8-byte stores), so only -2^31..2^31-1 mean what they say; elsewhere an
 * unsigned 32-bit value is accepted too.
 */
export function immediate(value: number, signExtended: boolean): number {
  const max = signExtended ? 0x7fffffff : 0xffffffff;
  if (!Number.isInteger(value) || value < -0x80000000 || value > max) {
    const hint = signExtended ? ' (64-bit operations sign-extend it; use ldImm64 for larger values)' : '';
    throw new EbpfAssemblyError(`immediate ${value} does not fit in 32 bits${hint}`);
  }
  return value | 0;
}

/** A 16-bit signed offset (memory displacement or jump distance). */
export function offset16(value: number, what: string): number {
  if (!Number.isInteger(value) || value < -0x8000 || value > 0x7fff) {
    throw new EbpfAssemblyError(`${what} ${value} is outside -32768..32767`);
  }
  return value;
}

export function instruction(
  opcode: number,
  dst: number,
  src: number,
  offset: number,
  imm: number,
): Instruction {
  return { opcode, dst, src, offset, imm };
}

/** The program in the kernel's layout: what BPF_PROG_LOAD's insns points to. */
export function encodeInstructions(instructions: readonly Instruction[]): Uint8Array {
  const bytes = new Uint8Array(instructions.length * INSTRUCTION_SIZE);
  const view = new DataView(bytes.buffer);
  instructions.forEach((ins, i) => {
    if (ins.dst < 0 || ins.dst > 10 || ins.src < 0 || ins.src > 15) {
      throw new EbpfAssemblyError(`instruction ${i}: register out of range (dst ${ins.dst}, src ${ins.src})`);
    }
    const at = i * INSTRUCTION_SIZE;
    view.setUint8(at, ins.opcode);
    view.setUint8(at + 1, (ins.src << 4) | ins.dst);
    view.setInt16(at + 2, offset16(ins.offset, `instruction ${i}: offset`), true);
    view.setInt32(at + 4, ins.imm | 0, true);
  });
  return bytes;
}
