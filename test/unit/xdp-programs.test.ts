import { test } from 'node:test';
import assert from 'node:assert/strict';

import { buildUdpFrame, IP_PROTO_TCP, IPV4_FLAG_MF, type UdpFrameOptions } from '../../src/packet/build.js';
import { parseIpv4 } from '../../src/packet/ipv4-address.js';
import { devmapValue, hostU32 } from '../../src/sys/bpf-map.js';
import { loadProgram, type BpfProgram } from '../../src/sys/bpf-program.js';
import { pinToCpu } from '../../src/sys/affinity.js';
import { openAll } from '../../src/sys/closables.js';
import { egressProgram } from '../../src/xdp/egress-program.js';
import { ingressProgram } from '../../src/xdp/ingress-program.js';
import { refusalProgram } from '../../src/xdp/refusal-program.js';
import { createInputMaps, createRuleDevmap, type InputMaps } from '../../src/xdp/input-maps.js';
import { egressConstants, encodeOutputValue, type OutputHeader } from '../../src/xdp/output-header.js';
import { XDP_DROP, XDP_PASS, XDP_REDIRECT } from '../../src/xdp/xdp-abi.js';
import {
  encodeAddressKey,
  encodeOutputKey,
  encodeRuleKey,
  encodeRuleValue,
  LINK_COPIES_SIZE,
  OUTPUT_COUNTS_SIZE,
  RULE_COUNTS_SIZE,
  sumOutputCounts,
  sumRuleCounts,
} from '../../src/xdp/xdp-maps.js';
import { checksummedFrame, ipHeaderValid, rawPathFrame, udpChecksum } from '../helpers/xdp-frames.js';

// The ingress and egress programs run by the kernel on crafted frames (BPF_PROG_TEST_RUN): no
// interface, real verifier, real maps. A redirect is not carried out in a test run; the return
// value says the program asked for it. Root only (CAP_BPF, CAP_NET_ADMIN).

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (CAP_BPF, CAP_NET_ADMIN)';

function ip(text: string): number {
  const address = parseIpv4(text);
  assert.ok(address !== undefined, text);
  return address;
}

const GROUP = ip('239.1.1.1');
const SOURCE = ip('10.0.0.2');
const base: UdpFrameOptions = {
  src: SOURCE,
  dst: GROUP,
  srcPort: 40000,
  dstPort: 5000,
  payload: 100,
  ttl: 16,
};

const output: OutputHeader = {
  group: ip('239.2.2.2'),
  port: 6000,
  sourcePort: 45678,
  sourceAddress: ip('10.1.0.1'),
  sourceMac: Uint8Array.of(0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01),
  ttl: 16,
  ttlFixed: false,
  dscp: undefined,
};

interface Ingress {
  maps: InputMaps;
  program: BpfProgram;
  close(): void;
}

/**
 * The ingress program with one rule (239.1.1.1:5000, untagged, or `vlan`) whose devmap has one
 * entry, in a devmap of one slot: the output sets' map of maps takes it though its template has
 * the most slots a rule may have.
 */
function ingressWithRule(vlan = 0, minTtl = 2): Ingress {
  return openAll((keep) => {
    const maps = createInputMaps(keep);
    const devmap = keep(createRuleDevmap(1));
    devmap.update(hostU32(0), devmapValue(1, 0)); // lo, no program: a test run never sends
    maps.outputSets.update(hostU32(3), hostU32(devmap.fd));
    maps.ruleCounts.update(hostU32(7), new Uint8Array(RULE_COUNTS_SIZE));
    maps.rules.update(
      encodeRuleKey({ group: GROUP, port: 5000, vlan }),
      encodeRuleValue({ slot: 7, outputs: 1, minTtl, outputSet: 3 }),
    );
    const program = keep(
      loadProgram({ name: 'mcr_ingress', kind: 'xdp', instructions: ingressProgram(maps) }),
    );
    const owned = [program, devmap, ...Object.values(maps)];
    return { maps, program, close: () => owned.forEach((r) => r.close()) };
  });
}

test("a rule's devmap has 1 to 64 slots: a broadcast visits every one, so it has one per output", () => {
  assert.throws(() => createRuleDevmap(0), /1 to 64 slots, not 0/);
  assert.throws(() => createRuleDevmap(65), /1 to 64 slots, not 65/);
});

test('ingress: a matching frame is redirected and counted with its payload bytes', { skip }, () => {
  const t = ingressWithRule();
  try {
    assert.equal(t.program.testRun(buildUdpFrame(base)).retval, XDP_REDIRECT);
    assert.equal(t.program.testRun(buildUdpFrame({ ...base, payload: 1316 }), 3).retval, XDP_REDIRECT);
    const withOptions = buildUdpFrame({ ...base, ipOptions: Uint8Array.of(1, 1, 1, 0, 1, 1, 1, 0) });
    assert.equal(t.program.testRun(withOptions).retval, XDP_REDIRECT, 'options are skipped');
    const counts = sumRuleCounts(t.maps.ruleCounts.lookupPerCpu(hostU32(7))!);
    assert.deepEqual(counts, {
      packets: 5,
      bytes: 100 + 3 * 1316 + 100,
      ownSource: 0,
      ttlExpired: 0,
      noOutput: 0,
    });
  } finally {
    t.close();
  }
});

test('ingress: everything that is not a valid match passes to the kernel, uncounted', { skip }, () => {
  const t = ingressWithRule();
  try {
    const good = buildUdpFrame(base);
    const badIhl = good.slice();
    badIhl[14] = 0x44;
    const badVersion = good.slice();
    badVersion[14] = 0x65;
    const badChecksum = good.slice();
    badChecksum[24] = good[24]! ^ 0xff;
    const longTotal = good.slice();
    longTotal[17] = good[17]! + 1; // total length one past the frame (checksum off too: either refuses)
    const longUdp = buildUdpFrame(base);
    longUdp[38] = 0xff; // UDP length beyond the IPv4 payload
    const shortUdp = buildUdpFrame(base);
    shortUdp[38] = 0;
    shortUdp[39] = 4;
    const cases: [string, Uint8Array][] = [
      ['another port', buildUdpFrame({ ...base, dstPort: 5001 })],
      ['another group', buildUdpFrame({ ...base, dst: ip('239.1.1.2') })],
      ['TCP', buildUdpFrame({ ...base, protocol: IP_PROTO_TCP })],
      ['first fragment (MF)', buildUdpFrame({ ...base, flags: IPV4_FLAG_MF })],
      ['later fragment (offset)', buildUdpFrame({ ...base, fragmentOffset: 100 })],
      ['tagged, rule untagged', buildUdpFrame({ ...base, vlanTags: [{ id: 10 }] })],
      ['two tags', buildUdpFrame({ ...base, vlanTags: [{ id: 0, tpid: 0x88a8 }, { id: 0 }] })],
      ['IHL 4', badIhl],
      ['IP version 6', badVersion],
      ['bad header checksum', badChecksum],
      ['total length beyond the frame', longTotal],
      ['UDP length beyond the datagram', longUdp],
      ['UDP length below 8', shortUdp],
      ['truncated in UDP', good.slice(0, 40)],
      ['cut short: total length beyond the frame, header intact', good.slice(0, 82)],
      ['truncated in IPv4', good.slice(0, 30)],
      ['Ethernet header only', good.slice(0, 14)], // (a test run takes no less)
      ['ARP', Uint8Array.from([...good.slice(0, 12), 0x08, 0x06, ...good.slice(14)])],
    ];
    for (const [what, frame] of cases) {
      assert.equal(t.program.testRun(frame).retval, XDP_PASS, what);
    }
    const counts = sumRuleCounts(t.maps.ruleCounts.lookupPerCpu(hostU32(7))!);
    assert.equal(counts.packets, 0, 'nothing passed on is counted');
  } finally {
    t.close();
  }
});

test(
  'ingress: a VLAN rule takes its VLAN only; priority-tagged frames match untagged rules',
  { skip },
  () => {
    const tagged = ingressWithRule(10);
    const untagged = ingressWithRule(0);
    try {
      const on10 = buildUdpFrame({ ...base, vlanTags: [{ id: 10, priority: 5 }] });
      assert.equal(tagged.program.testRun(on10).retval, XDP_REDIRECT);
      assert.equal(
        tagged.program.testRun(buildUdpFrame({ ...base, vlanTags: [{ id: 11 }] })).retval,
        XDP_PASS,
      );
      assert.equal(tagged.program.testRun(buildUdpFrame(base)).retval, XDP_PASS);
      const priorityTagged = buildUdpFrame({ ...base, vlanTags: [{ id: 0, priority: 3 }] });
      assert.equal(untagged.program.testRun(priorityTagged).retval, XDP_REDIRECT);
    } finally {
      tagged.close();
      untagged.close();
    }
  },
);

test('ingress: TTL 1 with no fixed-TTL output, own source: dropped and counted', { skip }, () => {
  const t = ingressWithRule();
  const fixed = ingressWithRule(0, 0);
  try {
    assert.equal(t.program.testRun(buildUdpFrame({ ...base, ttl: 1 })).retval, XDP_DROP);
    assert.equal(t.program.testRun(buildUdpFrame({ ...base, ttl: 0 })).retval, XDP_DROP);
    assert.equal(t.program.testRun(buildUdpFrame({ ...base, ttl: 2 })).retval, XDP_REDIRECT);
    assert.equal(fixed.program.testRun(buildUdpFrame({ ...base, ttl: 1 })).retval, XDP_REDIRECT);
    t.maps.hostAddresses.update(encodeAddressKey(SOURCE), hostU32(1));
    assert.equal(t.program.testRun(buildUdpFrame(base)).retval, XDP_DROP);
    const counts = sumRuleCounts(t.maps.ruleCounts.lookupPerCpu(hostU32(7))!);
    assert.deepEqual(counts, { packets: 4, bytes: 400, ownSource: 1, ttlExpired: 2, noOutput: 0 });
  } finally {
    t.close();
    fixed.close();
  }
});

/** The link a test run stands in for: devmap programs read it from their context. */
const LINK = 7;

/** Metadata the ingress program leaves on a relayed frame: output set 3, frame `frame`. */
function meta(frame: number): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setUint32(0, 3, true);
  new DataView(bytes.buffer).setUint32(4, frame, true);
  return bytes;
}

interface Egress {
  program: BpfProgram;
  maps: InputMaps;
  close(): void;
}

/**
 * The egress program with `headers` as output set 3's outputs on LINK (copies 0, 1, …), counted
 * in output_counts rows 5, 6, …. Loaded as kind xdp: this kernel refuses test runs of devmap
 * programs (EINVAL); the instructions are the same but for where the link's ifindex comes from,
 * and the devmap kind is loaded too, to show the verifier takes it.
 */
function egress(...headers: OutputHeader[]): Egress {
  return openAll((keep) => {
    const maps = createInputMaps(keep);
    maps.linkCopies.update(hostU32(LINK), new Uint8Array(LINK_COPIES_SIZE));
    headers.forEach((header, copy) => {
      maps.outputCounts.update(hostU32(5 + copy), new Uint8Array(OUTPUT_COUNTS_SIZE));
      const key = encodeOutputKey({ outputSet: 3, ifindex: LINK, copy });
      maps.outputs.update(key, encodeOutputValue(egressConstants(header), 5 + copy));
    });
    const instructions = egressProgram(maps, LINK);
    const program = keep(loadProgram({ name: 'mcr_egress', kind: 'xdp', instructions }));
    const devmapKind = egressProgram(maps, 'context');
    keep(loadProgram({ name: 'mcr_egress', kind: 'xdp_devmap', instructions: devmapKind })).close();
    const owned = [program, ...Object.values(maps)];
    return { program, maps, close: () => owned.forEach((r) => r.close()) };
  });
}

function counts(e: Egress, copy = 0): ReturnType<typeof sumOutputCounts> {
  return sumOutputCounts(e.maps.outputCounts.lookupPerCpu(hostU32(5 + copy))!);
}

test(
  "egress: the copy is byte for byte the raw path's frame for the same output (IP id: the input's)",
  { skip },
  () => {
    const e = egress(output);
    try {
      const inputs: [string, Uint8Array, number][] = [
        ['plain', checksummedFrame({ ...base, id: 0x1234, dscp: 10, ecn: 1 }), 14],
        ['tagged', checksummedFrame({ ...base, vlanTags: [{ id: 10 }], id: 7 }), 18],
        ['options', checksummedFrame({ ...base, ipOptions: Uint8Array.of(1, 1, 1, 0), id: 9 }), 14],
        [
          'tag and options',
          checksummedFrame({ ...base, vlanTags: [{ id: 3 }], ipOptions: new Uint8Array(40).fill(1) }),
          18,
        ],
        ['short, padded to 60', checksummedFrame({ ...base, payload: 4, padTo: 60 }), 14],
        ['large', checksummedFrame({ ...base, payload: 1400, ttl: 200 }), 14],
      ];
      for (const [i, [what, input, ip]] of inputs.entries()) {
        const result = e.program.testRun(input, 1, meta(i));
        assert.equal(result.retval, XDP_PASS, what);
        const ttl = Math.min(input[ip + 8]! - 1, output.ttl);
        const expected = rawPathFrame(input, ip, output, ttl, input[ip + 1]!);
        assert.equal(Buffer.from(result.output).toString('hex'), Buffer.from(expected).toString('hex'), what);
        assert.ok(ipHeaderValid(result.output, 14), `${what}: IPv4 checksum`);
        const udpField = (result.output[40]! << 8) | result.output[41]!;
        assert.equal(udpChecksum(result.output, 14), udpField, `${what}: UDP checksum`);
      }
      assert.deepEqual(counts(e), {
        packets: inputs.length,
        bytes: 100 * 4 + 4 + 1400,
        ttlExpired: 0,
        refused: 0,
        refusedBytes: 0,
      });
    } finally {
      e.close();
    }
  },
);

test('egress: fixed TTL, DSCP set with ECN kept, a zero UDP checksum stays zero', { skip }, () => {
  const fixed: OutputHeader = { ...output, ttl: 5, ttlFixed: true, dscp: 46 };
  const e = egress(fixed);
  try {
    const input = checksummedFrame({ ...base, ttl: 1, dscp: 8, ecn: 3 });
    const result = e.program.testRun(input, 1, meta(1));
    assert.equal(result.retval, XDP_PASS);
    assert.equal(result.output[22], 5, 'the fixed TTL');
    assert.equal(result.output[15], (46 << 2) | 3, 'DSCP 46, the input ECN');
    assert.deepEqual(result.output, rawPathFrame(input, 14, fixed, 5, (46 << 2) | 3));
    const unchecked = e.program.testRun(buildUdpFrame({ ...base, udpChecksum: 0 }), 1, meta(2));
    assert.equal((unchecked.output[40]! << 8) | unchecked.output[41]!, 0, 'no checksum stays none');
    assert.ok(ipHeaderValid(unchecked.output, 14));
  } finally {
    e.close();
  }
});

test(
  'egress: a copy whose TTL would be 0 is dropped and counted ttl_expired; the cap applies',
  { skip },
  () => {
    const e = egress({ ...output, ttl: 3 });
    try {
      assert.equal(e.program.testRun(checksummedFrame({ ...base, ttl: 1 }), 1, meta(1)).retval, XDP_DROP);
      const capped = e.program.testRun(checksummedFrame({ ...base, ttl: 64 }), 1, meta(2));
      assert.equal(capped.output[22], 3, 'min(64 − 1, 3)');
      const lower = e.program.testRun(checksummedFrame({ ...base, ttl: 3 }), 1, meta(3));
      assert.equal(lower.output[22], 2, 'min(3 − 1, 3)');
      assert.deepEqual(counts(e), { packets: 2, bytes: 200, ttlExpired: 1, refused: 0, refusedBytes: 0 });
    } finally {
      e.close();
    }
  },
);

test(
  'egress: clones of one frame on one link are told apart by their order; each output counts its own',
  { skip },
  () => {
    const groups = ['239.2.2.1', '239.2.2.2', '239.2.2.3'].map(ip);
    const e = egress(...groups.map((group) => ({ ...output, group })));
    try {
      const input = checksummedFrame(base);
      const destination = (frame: number): number => {
        const result = e.program.testRun(input, 1, meta(frame));
        assert.equal(result.retval, XDP_PASS);
        return new DataView(result.output.buffer, result.output.byteOffset).getUint32(30, false);
      };
      // Frame 10's three clones, then frame 11's: copy numbers start again with each frame.
      assert.deepEqual([destination(10), destination(10), destination(10)], groups);
      assert.deepEqual([destination(11), destination(11), destination(11)], groups);
      assert.equal(e.program.testRun(input, 1, meta(11)).retval, XDP_DROP, 'a fourth clone has no output');
      assert.deepEqual([counts(e, 0).packets, counts(e, 1).packets, counts(e, 2).packets], [2, 2, 2]);
    } finally {
      e.close();
    }
  },
);

test(
  "refusals: the copies past the driver's sent count are refused, each output its own with its bytes",
  { skip },
  () => {
    // Per-CPU maps: the egress runs and the tracepoint's run must see one CPU's log.
    pinToCpu(0);
    const e = egress(output, output);
    const refusals = loadProgram({
      name: 'mcr_refusals',
      kind: 'raw_tracepoint',
      instructions: refusalProgram(e.maps),
    });
    try {
      // A bulk as the kernel would run it: frame 1 to both outputs (copies 0 and 1), frame 2 to
      // the first; the driver then says it sent 1 of the 3.
      for (const [frame, payload] of [
        [1, 100],
        [1, 100],
        [2, 300],
      ] as const) {
        assert.equal(
          e.program.testRun(checksummedFrame({ ...base, payload }), 1, meta(frame)).retval,
          XDP_PASS,
        );
      }
      const xmit = (sent: number, drops: number): number =>
        refusals.testRunArguments([0n, 0n, BigInt(sent), BigInt(drops), 0n]);
      assert.equal(xmit(1, 2), 0);
      assert.deepEqual(counts(e, 0), {
        packets: 2,
        bytes: 400,
        ttlExpired: 0,
        refused: 1,
        refusedBytes: 300,
      });
      assert.deepEqual(counts(e, 1), {
        packets: 1,
        bytes: 100,
        ttlExpired: 0,
        refused: 1,
        refusedBytes: 100,
      });
      // The log was emptied: another bulk's tracepoint (of another input, say) refuses nothing here.
      xmit(0, 16);
      assert.equal(counts(e, 0).refused + counts(e, 1).refused, 2);
      // A driver that took every copy: nothing refused.
      e.program.testRun(checksummedFrame(base), 1, meta(3));
      xmit(1, 0);
      assert.deepEqual(counts(e, 0), {
        packets: 3,
        bytes: 500,
        ttlExpired: 0,
        refused: 1,
        refusedBytes: 300,
      });
    } finally {
      refusals.close();
      e.close();
    }
  },
);
