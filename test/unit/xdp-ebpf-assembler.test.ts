import { test } from 'node:test';
import assert from 'node:assert/strict';

import { EbpfAssembler } from '../../src/xdp/ebpf-assembler.js';
import { R0, R1, R2, R3, R4, R5, R6, R10 } from '../../src/xdp/ebpf-instructions.js';

// Expected bytes are written from the kernel's documented encoding (instruction-set.rst): opcode,
// dst_reg | src_reg << 4, offset (s16 LE), immediate (s32 LE); LD_IMM64 uses a second slot whose
// immediate is the upper half. They are not produced by this code.

const hex = (bytes: Uint8Array): string =>
  (Buffer.from(bytes).toString('hex').match(/.{16}/g) ?? [])
    .map((s) => s.replace(/(..)(?!$)/g, '$1 '))
    .join(' | ');
const asm = (): EbpfAssembler => new EbpfAssembler();
const one = (program: EbpfAssembler): string => hex(program.assemble());

test('mov64 r0, 2; exit: the smallest XDP program', () => {
  assert.equal(one(asm().mov64(R0, 2).exit()), 'b7 00 00 00 02 00 00 00 | 95 00 00 00 00 00 00 00');
});

test('ALU: 64- and 32-bit, immediate and register forms', () => {
  assert.equal(one(asm().mov64(R6, R1)), 'bf 16 00 00 00 00 00 00');
  assert.equal(one(asm().alu64('add', R2, -4)), '07 02 00 00 fc ff ff ff');
  assert.equal(one(asm().alu64('add', R4, R2)), '0f 24 00 00 00 00 00 00');
  assert.equal(one(asm().alu32('and', R1, 0x0f)), '54 01 00 00 0f 00 00 00');
  assert.equal(one(asm().alu64('rsh', R3, 4)), '77 03 00 00 04 00 00 00');
  assert.equal(one(asm().alu64('arsh', R3, R5)), 'cf 53 00 00 00 00 00 00');
  assert.equal(one(asm().alu32('xor', R0, R0)), 'ac 00 00 00 00 00 00 00');
  assert.equal(one(asm().mov32(R1, 0xffffffff)), 'b4 01 00 00 ff ff ff ff', 'a u32 immediate in a 32-bit op');
  assert.equal(one(asm().neg64(R4)), '87 04 00 00 00 00 00 00');
});

test('byte swaps: to big-endian (network order) and to little-endian', () => {
  assert.equal(one(asm().toBigEndian(R5, 16)), 'dc 05 00 00 10 00 00 00');
  assert.equal(one(asm().toBigEndian(R1, 32)), 'dc 01 00 00 20 00 00 00');
  assert.equal(one(asm().toLittleEndian(R1, 64)), 'd4 01 00 00 40 00 00 00');
});

test('loads and stores of 1, 2, 4 and 8 bytes; atomic add', () => {
  assert.equal(one(asm().ldx(4, R2, R1, 0)), '61 12 00 00 00 00 00 00');
  assert.equal(one(asm().ldx(4, R3, R1, 4)), '61 13 04 00 00 00 00 00');
  assert.equal(one(asm().ldx(2, R5, R2, 12)), '69 25 0c 00 00 00 00 00');
  assert.equal(one(asm().ldx(1, R5, R2, 23)), '71 25 17 00 00 00 00 00');
  assert.equal(one(asm().ldx(8, R1, R0, 0)), '79 01 00 00 00 00 00 00');
  assert.equal(one(asm().stx(8, R10, -8, R1)), '7b 1a f8 ff 00 00 00 00');
  assert.equal(one(asm().stx(1, R2, 22, R3)), '73 32 16 00 00 00 00 00');
  assert.equal(one(asm().st(4, R10, -4, 0)), '62 0a fc ff 00 00 00 00');
  assert.equal(one(asm().st(2, R10, -2, 0x0800)), '6a 0a fe ff 00 08 00 00');
  assert.equal(one(asm().st(1, R10, -1, 7)), '72 0a ff ff 07 00 00 00');
  assert.equal(one(asm().st(8, R10, -16, -1)), '7a 0a f0 ff ff ff ff ff');
  assert.equal(one(asm().atomicAdd(8, R0, 0, R1)), 'db 10 00 00 00 00 00 00');
  assert.equal(one(asm().atomicAdd(4, R0, 8, R1)), 'c3 10 08 00 00 00 00 00');
});

test('LD_IMM64: a constant, a map fd (BPF_PSEUDO_MAP_FD) and a map value, two slots each', () => {
  assert.equal(
    one(asm().ldImm64(R2, 0x1122334455667788n)),
    '18 02 00 00 88 77 66 55 | 00 00 00 00 44 33 22 11',
  );
  assert.equal(one(asm().ldImm64(R2, -1)), '18 02 00 00 ff ff ff ff | 00 00 00 00 ff ff ff ff');
  assert.equal(
    one(asm().ldMapFd(R1, 7)),
    '18 11 00 00 07 00 00 00 | 00 00 00 00 00 00 00 00',
    'opcode 0x18, src_reg 1 (BPF_PSEUDO_MAP_FD), the fd in the first immediate',
  );
  assert.equal(one(asm().ldMapFd(R1, { fd: 9 })), '18 11 00 00 09 00 00 00 | 00 00 00 00 00 00 00 00');
  assert.equal(
    one(asm().ldMapValue(R1, 5, 16)),
    '18 21 00 00 05 00 00 00 | 00 00 00 00 10 00 00 00',
    'src_reg 2 (BPF_PSEUDO_MAP_VALUE), the offset in the second immediate',
  );
  assert.equal(asm().ldMapFd(R1, 3).length, 2);
});

test('helper calls by name, and exit', () => {
  assert.equal(one(asm().call('map_lookup_elem')), '85 00 00 00 01 00 00 00');
  assert.equal(one(asm().call('map_update_elem')), '85 00 00 00 02 00 00 00');
  assert.equal(one(asm().call('ktime_get_ns')), '85 00 00 00 05 00 00 00');
  assert.equal(one(asm().call('get_smp_processor_id')), '85 00 00 00 08 00 00 00');
  assert.equal(one(asm().call('csum_diff')), '85 00 00 00 1c 00 00 00');
  assert.equal(one(asm().call('xdp_adjust_head')), '85 00 00 00 2c 00 00 00');
  assert.equal(one(asm().call('redirect_map')), '85 00 00 00 33 00 00 00');
  assert.equal(one(asm().exit()), '95 00 00 00 00 00 00 00');
});

test('jumps to labels: forward, backward, over LD_IMM64, 32-bit and register forms', () => {
  const loop = asm()
    .mov64(R0, 0) // 0
    .label('top')
    .jmp('jeq', R0, 10, 'done') // 1 → 4: +2
    .alu64('add', R0, 1) // 2
    .ja('top') // 3 → 1: -3
    .label('done')
    .exit(); // 4
  assert.equal(
    one(loop),
    [
      'b7 00 00 00 00 00 00 00',
      '15 00 02 00 0a 00 00 00',
      '07 00 00 00 01 00 00 00',
      '05 00 fd ff 00 00 00 00',
      '95 00 00 00 00 00 00 00',
    ].join(' | '),
  );
  // A jump over LD_IMM64 skips both of its slots.
  const over = asm().ja('after').ldImm64(R1, 1).label('after').exit();
  assert.equal(hex(over.assemble()).split(' | ')[0], '05 00 02 00 00 00 00 00');
  assert.equal(
    one(asm().jmp('jgt', R4, R3, 'x').label('x').exit()).split(' | ')[0],
    '2d 34 00 00 00 00 00 00',
  );
  assert.equal(
    one(asm().jmp32('jne', R5, 17, 'x').label('x').exit()).split(' | ')[0],
    '56 05 00 00 11 00 00 00',
  );
  assert.equal(
    one(asm().jmp('jsgt', R1, R2, 'x').label('x').exit()).split(' | ')[0],
    '6d 21 00 00 00 00 00 00',
  );
  assert.equal(
    one(asm().jmp('jset', R1, 0x2000, 'x').label('x').exit()).split(' | ')[0],
    '45 01 00 00 00 20 00 00',
  );
  // A jump to the very next instruction has offset 0; to itself, -1.
  assert.equal(one(asm().label('self').ja('self').exit()).split(' | ')[0], '05 00 ff ff 00 00 00 00');
});

/** Asserts that `build` throws the assembler's error, with a message matching `message`. */
function rejects(build: () => unknown, message: RegExp): void {
  assert.throws(build, (err: Error & { code?: string }) => {
    assert.equal(err.code, 'E_BPF_ASSEMBLY');
    assert.match(err.message, message);
    return true;
  });
}

test('labels: undefined, defined twice, at the end, out of range', () => {
  rejects(() => asm().ja('nowhere').exit().assemble(), /label "nowhere", which is not defined/);
  rejects(() => asm().label('a').exit().label('a'), /label "a" is defined twice/);
  rejects(() => asm().ja('end').exit().label('end').assemble(), /label "end" ends the program/);
  const far = asm().ja('far');
  for (let i = 0; i < 32768; i++) far.mov64(R0, 0);
  far.label('far').exit();
  rejects(() => far.assemble(), /out of range: 32768 does not fit a 16-bit offset/);
  const justInRange = asm().ja('far');
  for (let i = 0; i < 32767; i++) justInRange.mov64(R0, 0);
  justInRange.label('far').exit();
  assert.equal(hex(justInRange.assemble().subarray(0, 8)), '05 00 ff 7f 00 00 00 00');
});

test('operands the kernel would misread are refused', () => {
  rejects(() => asm().mov64(R0, 0x80000000), /does not fit in 32 bits.*ldImm64/);
  rejects(() => asm().mov32(R0, 2 ** 32), /does not fit in 32 bits/);
  rejects(() => asm().alu64('lsh', R0, 64), /shifts of a 64-bit value take 0-63/);
  rejects(() => asm().alu32('rsh', R0, 32), /shifts of a 32-bit value take 0-31/);
  rejects(() => asm().alu64('div', R0, 0), /div by the immediate 0/);
  rejects(() => asm().ldx(4, R0, R1, 40000), /offset 40000 is outside/);
  rejects(() => asm().ldImm64(R0, 2 ** 60), /pass a bigint/);
  rejects(() => asm().ldMapFd(R1, -1), /not a map's file descriptor/);
  rejects(() => asm().mov64(R0, 1.5), /does not fit in 32 bits/);
});
