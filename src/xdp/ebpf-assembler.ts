import {
  ALU_OPERATIONS,
  BPF_ALU,
  BPF_ALU64,
  BPF_ATOMIC,
  BPF_CALL,
  BPF_DW,
  BPF_END,
  BPF_EXIT,
  BPF_IMM,
  BPF_JA,
  BPF_JMP,
  BPF_JMP32,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_MEM,
  BPF_NEG,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_VALUE,
  BPF_ST,
  BPF_STX,
  BPF_TO_BE,
  BPF_TO_LE,
  BPF_X,
  EbpfAssemblyError,
  encodeInstructions,
  HELPERS,
  immediate,
  instruction,
  JUMP_CONDITIONS,
  offset16,
  R1,
  R2,
  R10,
  sizeOf,
  type AluOperation,
  type HelperName,
  type Instruction,
  type JumpCondition,
  type Operand,
  type Register,
  type Width,
} from './ebpf-instructions.js';

/** A map an instruction refers to: its fd, or anything that has one (a BpfMap). */
export type MapReference = number | { readonly fd: number };

type Step =
  | { kind: 'instruction'; instruction: Instruction }
  | { kind: 'label'; name: string }
  | { kind: 'jump'; opcode: number; dst: number; src: number; imm: number; target: string };

/**
 * Builds an eBPF program one instruction at a time, in the kernel's assembly vocabulary (mov64,
 * ldx, stx, jeq, call, exit …), with jumps to named labels that assemble() resolves. Every method
 * returns the builder, so a program reads top to bottom:
 *
 *   new EbpfAssembler().mov64(R0, XDP_PASS).exit().assemble()
 *
 * It checks what it can know without the verifier: immediates and offsets that do not fit,
 * shifts past the register width, division by a zero immediate, labels defined twice, jumps to
 * labels that do not exist or lie outside a 16-bit offset.
 */
export class EbpfAssembler {
  private readonly steps: Step[] = [];
  private readonly labels = new Set<string>();
  private slots = 0;

  /** Instruction slots so far (LD_IMM64 takes two). */
  get length(): number {
    return this.slots;
  }

  /** Names the position of the next instruction, as a jump target. */
  label(name: string): this {
    if (name.length === 0) throw new EbpfAssemblyError('a label needs a name');
    if (this.labels.has(name)) throw new EbpfAssemblyError(`label "${name}" is defined twice`);
    this.labels.add(name);
    this.steps.push({ kind: 'label', name });
    return this;
  }

  /** dst = dst OP src, on all 64 bits. */
  alu64(operation: AluOperation, dst: Register, src: Operand): this {
    return this.alu(BPF_ALU64, operation, dst, src);
  }

  /** dst = dst OP src on the low 32 bits; the upper 32 bits of dst become zero. */
  alu32(operation: AluOperation, dst: Register, src: Operand): this {
    return this.alu(BPF_ALU, operation, dst, src);
  }

  mov64(dst: Register, src: Operand): this {
    return this.alu64('mov', dst, src);
  }

  mov32(dst: Register, src: Operand): this {
    return this.alu32('mov', dst, src);
  }

  neg64(dst: Register): this {
    return this.push(instruction(BPF_ALU64 | BPF_NEG | BPF_K, dst.index, 0, 0, 0));
  }

  neg32(dst: Register): this {
    return this.push(instruction(BPF_ALU | BPF_NEG | BPF_K, dst.index, 0, 0, 0));
  }

  /**
   * Converts the low `bits` of dst between host order and big-endian (network order), zeroing
   * the rest: on a little-endian host it swaps the bytes (be16 r1).
   */
  toBigEndian(dst: Register, bits: 16 | 32 | 64): this {
    return this.push(instruction(BPF_ALU | BPF_END | BPF_TO_BE, dst.index, 0, 0, endianBits(bits)));
  }

  /** Converts the low `bits` of dst to little-endian, zeroing the rest (le16 r1). */
  toLittleEndian(dst: Register, bits: 16 | 32 | 64): this {
    return this.push(instruction(BPF_ALU | BPF_END | BPF_TO_LE, dst.index, 0, 0, endianBits(bits)));
  }

  /** dst = *(width *)(src + offset), zero-extended. */
  ldx(width: Width, dst: Register, src: Register, offset: number): this {
    return this.push(
      instruction(BPF_LDX | BPF_MEM | sizeOf(width), dst.index, src.index, offset16(offset, 'offset'), 0),
    );
  }

  /** *(width *)(dst + offset) = value (an immediate; 8-byte stores sign-extend it). */
  st(width: Width, dst: Register, offset: number, value: number): this {
    const opcode = BPF_ST | BPF_MEM | sizeOf(width);
    return this.push(
      instruction(opcode, dst.index, 0, offset16(offset, 'offset'), immediate(value, width === 8)),
    );
  }

  /** *(width *)(dst + offset) = src. */
  stx(width: Width, dst: Register, offset: number, src: Register): this {
    return this.push(
      instruction(BPF_STX | BPF_MEM | sizeOf(width), dst.index, src.index, offset16(offset, 'offset'), 0),
    );
  }

  /** *(width *)(dst + offset) += src, atomically (for counters shared between CPUs). */
  atomicAdd(width: 4 | 8, dst: Register, offset: number, src: Register): this {
    const opcode = BPF_STX | BPF_ATOMIC | sizeOf(width);
    return this.push(
      instruction(opcode, dst.index, src.index, offset16(offset, 'offset'), ALU_OPERATIONS.add),
    );
  }

  /** dst = a 64-bit constant (two slots). */
  ldImm64(dst: Register, value: bigint | number): this {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) {
      throw new EbpfAssemblyError(
        `ldImm64: ${value} is not an integer a Number holds exactly; pass a bigint`,
      );
    }
    const bits = BigInt.asUintN(64, BigInt(value));
    return this.wide(dst, 0, Number(bits & 0xffffffffn), Number(bits >> 32n));
  }

  /** dst = the map (for helper calls); the kernel swaps the fd for the map at load time. */
  ldMapFd(dst: Register, map: MapReference): this {
    return this.wide(dst, BPF_PSEUDO_MAP_FD, mapFd(map), 0);
  }

  /** dst = a pointer to byte `offset` of an array map's first value, without a lookup call. */
  ldMapValue(dst: Register, map: MapReference, offset: number): this {
    return this.wide(dst, BPF_PSEUDO_MAP_VALUE, mapFd(map), immediate(offset, false));
  }

  /** Jumps to `target` unconditionally. */
  ja(target: string): this {
    return this.jumpTo(BPF_JMP | BPF_JA, 0, 0, 0, target);
  }

  /** Jumps to `target` when `dst CONDITION src` holds, comparing all 64 bits. */
  jmp(condition: JumpCondition, dst: Register, src: Operand, target: string): this {
    return this.conditional(BPF_JMP, condition, dst, src, target);
  }

  /** Jumps to `target` when the condition holds on the low 32 bits. */
  jmp32(condition: JumpCondition, dst: Register, src: Operand, target: string): this {
    return this.conditional(BPF_JMP32, condition, dst, src, target);
  }

  /** Calls a helper: arguments in r1-r5, result in r0; r1-r5 are clobbered. */
  call(helper: HelperName): this {
    const id = HELPERS[helper];
    if (id === undefined) throw new EbpfAssemblyError(`no helper named ${String(helper)}`);
    return this.push(instruction(BPF_JMP | BPF_CALL, 0, 0, 0, id));
  }

  /**
   * r0 = map_lookup_elem(map, the key at r10 + `keyAt`): a pointer to the value, or 0. Clobbers
   * r1-r5, as every helper call does.
   */
  lookup(map: MapReference, keyAt: number): this {
    return this.mov64(R2, R10).alu64('add', R2, keyAt).ldMapFd(R1, map).call('map_lookup_elem');
  }

  /**
   * The u64 at `base` + `at` += `amount`, through `scratch` (plain load, add, store: for per-CPU
   * values, which only their own CPU writes).
   */
  addU64(base: Register, at: number, amount: Operand, scratch: Register): this {
    return this.ldx(8, scratch, base, at).alu64('add', scratch, amount).stx(8, base, at, scratch);
  }

  /** Returns r0 to the caller (for XDP, the action). */
  exit(): this {
    return this.push(instruction(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  }

  /** The instructions with every jump resolved. */
  instructions(): Instruction[] {
    const positions = new Map<string, number>();
    let pc = 0;
    for (const step of this.steps) {
      if (step.kind === 'label') positions.set(step.name, pc);
      else pc++;
    }
    const program: Instruction[] = [];
    for (const step of this.steps) {
      if (step.kind === 'instruction') program.push(step.instruction);
      else if (step.kind === 'jump') program.push(resolve(step, program.length, positions, pc));
    }
    return program;
  }

  /** The program as BPF_PROG_LOAD takes it. */
  assemble(): Uint8Array {
    return encodeInstructions(this.instructions());
  }

  private alu(cls: number, operation: AluOperation, dst: Register, src: Operand): this {
    const op = ALU_OPERATIONS[operation];
    if (op === undefined) throw new EbpfAssemblyError(`no ALU operation ${String(operation)}`);
    if (typeof src !== 'number') return this.push(instruction(cls | op | BPF_X, dst.index, src.index, 0, 0));
    const width = cls === BPF_ALU64 ? 64 : 32;
    if ((operation === 'div' || operation === 'mod') && src === 0) {
      throw new EbpfAssemblyError(`${operation} by the immediate 0`);
    }
    if ((operation === 'lsh' || operation === 'rsh' || operation === 'arsh') && (src < 0 || src >= width)) {
      throw new EbpfAssemblyError(
        `${operation} by ${src}: shifts of a ${width}-bit value take 0-${width - 1}`,
      );
    }
    return this.push(instruction(cls | op | BPF_K, dst.index, 0, 0, immediate(src, width === 64)));
  }

  private conditional(
    cls: number,
    condition: JumpCondition,
    dst: Register,
    src: Operand,
    target: string,
  ): this {
    const op = JUMP_CONDITIONS[condition];
    if (op === undefined) throw new EbpfAssemblyError(`no jump condition ${String(condition)}`);
    if (typeof src !== 'number') return this.jumpTo(cls | op | BPF_X, dst.index, src.index, 0, target);
    return this.jumpTo(cls | op | BPF_K, dst.index, 0, immediate(src, cls === BPF_JMP), target);
  }

  private jumpTo(opcode: number, dst: number, src: number, imm: number, target: string): this {
    this.steps.push({ kind: 'jump', opcode, dst, src, imm, target });
    this.slots++;
    return this;
  }

  /** LD_IMM64: the low half in the first slot, the high half in the second. */
  private wide(dst: Register, pseudo: number, low: number, high: number): this {
    this.push(instruction(BPF_LD | BPF_DW | BPF_IMM, dst.index, pseudo, 0, low | 0));
    return this.push(instruction(0, 0, 0, 0, high | 0));
  }

  private push(ins: Instruction): this {
    this.steps.push({ kind: 'instruction', instruction: ins });
    this.slots++;
    return this;
  }
}

function endianBits(bits: number): number {
  if (bits !== 16 && bits !== 32 && bits !== 64) throw new EbpfAssemblyError(`byte swap of ${bits} bits`);
  return bits;
}

function mapFd(map: MapReference): number {
  const fd = typeof map === 'number' ? map : map.fd;
  if (!Number.isInteger(fd) || fd < 0) throw new EbpfAssemblyError(`${fd} is not a map's file descriptor`);
  return fd;
}

/** A jump's offset counts from the instruction after it. */
function resolve(
  step: Extract<Step, { kind: 'jump' }>,
  at: number,
  positions: ReadonlyMap<string, number>,
  end: number,
): Instruction {
  const to = positions.get(step.target);
  if (to === undefined) throw new EbpfAssemblyError(`jump to label "${step.target}", which is not defined`);
  if (to >= end) {
    throw new EbpfAssemblyError(`label "${step.target}" ends the program: no instruction follows it`);
  }
  const distance = to - at - 1;
  if (distance < -0x8000 || distance > 0x7fff) {
    throw new EbpfAssemblyError(
      `jump from instruction ${at} to label "${step.target}" (instruction ${to}) is out of range: ` +
        `${distance} does not fit a 16-bit offset`,
    );
  }
  return instruction(step.opcode, step.dst, step.src, distance, step.imm);
}
