import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { BPF_RET_K } from '../../src/sys/classic-bpf.js';
import { DENIED_SYSCALLS, seccompSupported, workerFilter } from '../../src/sys/seccomp.js';

const probe = fileURLToPath(new URL('../helpers/seccomp-probe.js', import.meta.url));

test('the worker filter checks the architecture first and ends every path in a return', () => {
  const program = workerFilter(1234);
  assert.deepEqual([program[0]!.code, program[0]!.k], [0x20, 4], 'loads seccomp_data.arch');
  assert.equal(program[1]!.k, 0xc000003e, 'x86-64 only; anything else is killed');
  assert.equal(program.at(-1)!.code, BPF_RET_K);
  assert.ok(program.length < 256, 'every jump fits in 8 bits');
  assert.ok(
    program.some((i) => i.k === 1234),
    "signals only to the worker's own pid",
  );
  assert.ok(Object.keys(DENIED_SYSCALLS).includes('execve'));
});

test(
  'a confined process cannot open, bind or connect sockets, run programs or signal others; threads, timers and files work',
  { skip: !seccompSupported() },
  () => {
    const r = spawnSync(process.execPath, [probe], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 0, r.stderr);
    const results = JSON.parse(r.stdout) as Record<string, string>;
    assert.deepEqual(results, {
      socket: 'EPERM',
      bind: 'EPERM',
      execve: 'EPERM',
      killParent: 'EPERM',
      killSelf: 'ok',
      prlimitParent: 'EPERM',
      prlimitSelf: 'ok',
      prlimitOwnPid: 'ok',
      setpriority: 'EPERM',
      readFile: 'ok',
      seccompMode: '2',
      thread: 'ok',
    });
  },
);
