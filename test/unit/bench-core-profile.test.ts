import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifySample, parseSamples, profileSamples, topFunctions } from '../../bench/core-profile.js';

// Call chains as `perf script -F comm,pid,ip,sym` printed them for the relay core on 6.18, cut to
// the frames that matter (innermost first).
const SCRIPT = `swapper     0
\tffffffff8225f8ab pv_native_safe_halt+0xb
\tffffffff822613b5 default_idle+0x5
\tffffffff813d01b4 do_idle+0x214

napi/in0-8195  1234
\tffffffffc0001234 bpf_prog_532480f84dc64f7c_mcr_ingress+0x88
\tffffffff81c00001 veth_xdp_rcv_skb+0x100
\tffffffff81c00002 veth_xdp_rcv+0x50
\tffffffff81c00003 veth_poll+0x60
\tffffffff81c00004 __napi_poll+0x2b
\tffffffff81c00005 napi_threaded_poll_loop+0x90
\tffffffff81c00006 napi_threaded_poll+0x40

napi/in0-8195  1234
\tffffffff81c00010 xdpf_clone+0x30
\tffffffff81c00011 dev_map_enqueue_multi+0x120
\tffffffff81c00012 xdp_do_redirect+0x80
\tffffffff81c00002 veth_xdp_rcv+0x50
\tffffffff81c00006 napi_threaded_poll+0x40

napi/in0-8195  1234
\tffffffffc0005678 bpf_prog_0855da3a9dd066bf_mcr_egress+0x40
\tffffffff81c00020 dev_map_bpf_prog_run+0x70
\tffffffff81c00021 bq_xmit_all+0x50
\tffffffff81c00022 xdp_do_flush+0x30
\tffffffff81c00006 napi_threaded_poll+0x40

napi/in0-8195  1234
\tffffffff81c00030 dev_gro_receive+0x10
\tffffffff81c00031 veth_poll+0x60
\tffffffff81c00032 __napi_poll+0x2b
\tffffffff81c00033 net_rx_action+0x1f0
\tffffffff81c00034 handle_softirqs+0xd0
\tffffffff81c00035 __local_bh_enable_ip+0x60
\tffffffff81c00006 napi_threaded_poll+0x40

swapper     0
\tffffffff81c00040 ip_rcv_core+0x10
\tffffffff81c00041 process_backlog+0x80
\tffffffff81c00033 net_rx_action+0x1f0
\tffffffff81c00042 irq_exit_rcu+0x50
\tffffffff8225f8ab pv_native_safe_halt+0xb
\tffffffff813d01b4 do_idle+0x214

napi/in0-8195  1234
\tffffffff81c00050 skb_pp_cow_data+0x20
\tffffffff81c00001 veth_xdp_rcv_skb+0x100
\tffffffff81c00006 napi_threaded_poll+0x40

MainThread  4321
\t    7f0000001000 Builtins_LoadIC+0x1
\t    7f0000002000 [unknown]

V8 DefaultWorke  4321
\t    7f0000003000 v8::internal::ConcurrentMarking::RunMajor+0x1

swapper     0
\tffffffff81c00060 hrtimer_interrupt+0x10
\tffffffff8225f8ab pv_native_safe_halt+0xb
\tffffffff813d01b4 do_idle+0x214

kworker/0:1    99
\tffffffff81c00070 rcu_do_batch+0x10
`;

const RELAY = new Set([4321]);

test('perf script samples are parsed into thread, process and call chain without offsets', () => {
  const samples = parseSamples(SCRIPT);
  assert.equal(samples.length, 11);
  assert.deepEqual(samples[1], {
    comm: 'napi/in0-8195',
    pid: 1234,
    stack: [
      'bpf_prog_532480f84dc64f7c_mcr_ingress',
      'veth_xdp_rcv_skb',
      'veth_xdp_rcv',
      'veth_poll',
      '__napi_poll',
      'napi_threaded_poll_loop',
      'napi_threaded_poll',
    ],
  });
  // A thread name with a space keeps it; the pid is the last field.
  assert.equal(samples[8]!.comm, 'V8 DefaultWorke');
  assert.equal(samples[8]!.pid, 4321);
});

test('each sample goes to the one activity its call chain shows', () => {
  const kinds = parseSamples(SCRIPT).map((s) => classifySample(s, RELAY));
  assert.deepEqual(kinds, [
    'idle',
    'xdp-programs', // the ingress program in the input's NAPI thread
    'replication', // the devmap broadcast's clone
    'xdp-programs', // the egress program, run inside the devmap's bulk transmit
    'receivers', // a receiver veth's NAPI, run from the softirq the input thread's bh-enable runs
    'receivers', // the kernel path's backlog, run on irq exit while the core idled: work, not idle
    'input',
    'relay-processes',
    'relay-processes', // a helper thread of a relay process
    'other', // a timer interrupt that woke the idle core
    'other',
  ]);
});

test('a profile counts samples per activity, and names the leaf functions of one', () => {
  const samples = parseSamples(SCRIPT);
  const profile = profileSamples(samples, RELAY);
  assert.deepEqual(profile, {
    receivers: 2,
    'relay-processes': 2,
    'xdp-programs': 2,
    replication: 1,
    input: 1,
    idle: 1,
    other: 2,
  });
  assert.deepEqual(topFunctions(samples, RELAY, 'xdp-programs', 5), [
    { name: 'bpf_prog_532480f84dc64f7c_mcr_ingress', samples: 1 },
    { name: 'bpf_prog_0855da3a9dd066bf_mcr_egress', samples: 1 },
  ]);
});
