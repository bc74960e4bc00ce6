import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  DROP_REASON_COUNT,
  DropReason,
  ParsedFrame,
  dropReasonName,
  parseFrame,
} from '../../src/packet/frame.js';
import { ETHERTYPE_QINQ, IPV4_FLAG_DF, buildUdpFrame, ipv4HeaderChecksum } from '../../src/packet/build.js';

// Reproduce a failure with MCR_FUZZ_SEED=<seed printed in the failure message>.
const SEED =
  process.env['MCR_FUZZ_SEED'] !== undefined
    ? Number(process.env['MCR_FUZZ_SEED']) >>> 0
    : (Math.random() * 2 ** 32) >>> 0;

/** mulberry32: tiny, fast, good enough to spread test inputs; not for anything else. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = mulberry32(SEED);
const int = (n: number): number => Math.floor(rand() * n);

/** Fills buf[0, end) with noise, four bytes per PRNG call to keep the test fast. */
function fillRandom(end: number): void {
  for (let i = 0; i < end; i += 4) {
    const r = (rand() * 4294967296) >>> 0;
    buf[i] = r;
    buf[i + 1] = r >>> 8;
    buf[i + 2] = r >>> 16;
    buf[i + 3] = r >>> 24;
  }
}

const ITERATIONS = 50_000;
const SLACK = 64; // room before and after each frame so out-of-range reads would see garbage
const buf = new Uint8Array(SLACK + 1600 + 64 + SLACK);
const out = new ParsedFrame();

function flipBit(i: number, bit: number): void {
  buf[i] = buf[i]! ^ (1 << bit);
}

function fail(message: string, start: number, length: number): never {
  const hex = Buffer.from(buf.subarray(start, start + length)).toString('hex');
  assert.fail(
    `${message}\nseed=${SEED} (MCR_FUZZ_SEED=${SEED} to reproduce)\nstart=${start} length=${length}\n${hex}`,
  );
}

/** Parses buf[start, start+length) and checks everything that must hold for any input. */
function check(start: number, length: number, counts: Uint32Array): void {
  let code: number;
  try {
    code = parseFrame(buf, start, length, out);
  } catch (err) {
    fail(`parseFrame threw ${String(err)}`, start, length);
  }
  if (!Number.isInteger(code) || code < 0 || code >= DROP_REASON_COUNT)
    fail(`invalid code ${code}`, start, length);
  counts[code]!++;
  if (code !== DropReason.OK) return;

  const end = start + length;
  const ok =
    out.payloadOffset + out.payloadLength <= end &&
    out.ipOffset >= start + 14 + 4 * out.vlanCount &&
    out.vlanCount <= 2 &&
    out.ipOffset + out.ipHeaderLength <= out.payloadOffset - 8 &&
    out.ipOffset + out.ipTotalLength <= end &&
    out.udpLength === out.payloadLength + 8 &&
    out.payloadLength >= 0 &&
    out.protocol === 17 &&
    out.srcAddr >= 0 &&
    out.srcAddr <= 0xffffffff &&
    out.dstAddr >= 0 &&
    out.dstAddr <= 0xffffffff;
  if (!ok) fail(`OK but invariants broken: ${JSON.stringify(out)}`, start, length);
  const stored = (buf[out.ipOffset + 10]! << 8) | buf[out.ipOffset + 11]!;
  if (ipv4HeaderChecksum(buf, out.ipOffset, out.ipHeaderLength) !== stored) {
    fail('OK with a wrong IPv4 checksum', start, length);
  }
}

function summary(counts: Uint32Array): string {
  return Array.from(counts, (n, code) => `${dropReasonName(code)}=${n}`).join(' ');
}

test(`random bytes never break parseFrame (seed ${SEED})`, () => {
  const counts = new Uint32Array(DROP_REASON_COUNT);
  for (let n = 0; n < ITERATIONS; n++) {
    const start = int(SLACK);
    const length = int(1601);
    fillRandom(Math.min(buf.length, start + length + SLACK));
    // Pure noise almost never gets past the EtherType; nudge some frames deeper.
    const ip = start + 14;
    if (rand() < 0.5) {
      buf[start + 12] = 0x08;
      buf[start + 13] = 0x00;
      if (rand() < 0.7) buf[ip] = 0x45;
      if (rand() < 0.5) {
        buf[ip + 9] = 17;
        buf[ip + 6] = buf[ip + 6]! & (rand() < 0.8 ? 0x40 : 0xff);
        buf[ip + 7] = rand() < 0.8 ? 0 : buf[ip + 7]!;
        const total = Math.max(0, Math.min(0xffff, length - 14 + int(41) - 20));
        buf[ip + 2] = total >>> 8;
        buf[ip + 3] = total & 0xff;
        const c = ipv4HeaderChecksum(buf, ip, 20);
        if (rand() < 0.8) {
          buf[ip + 10] = c >>> 8;
          buf[ip + 11] = c & 0xff;
        }
      }
    }
    check(start, length, counts);
  }
  assert.ok(counts[DropReason.NOT_IPV4]! > 0, summary(counts));
  assert.ok(counts[DropReason.OK]! > 0, summary(counts));
});

/** A varied set of valid frames to mutate. */
function templates(): Uint8Array[] {
  const list: Uint8Array[] = [];
  for (let i = 0; i < 300; i++) {
    const tagCount = int(10) < 7 ? int(3) : 3;
    const vlanTags = Array.from({ length: tagCount }, (_, t) => ({
      id: int(4096),
      tpid: t === 0 && rand() < 0.5 ? ETHERTYPE_QINQ : undefined,
    }));
    const payload = rand() < 0.3 ? int(20) : int(1500 - 60 - 8);
    list.push(
      buildUdpFrame({
        src: int(2 ** 32),
        dst: 0xe0000000 + int(2 ** 28),
        srcPort: int(65536),
        dstPort: int(65536),
        payload: Uint8Array.from({ length: payload }, () => int(256)),
        ttl: int(256),
        dscp: int(64),
        ecn: int(4),
        id: int(65536),
        flags: rand() < 0.5 ? IPV4_FLAG_DF : 0,
        ipOptions: rand() < 0.3 ? new Uint8Array(4 * int(11)).fill(1) : undefined,
        padTo: rand() < 0.2 ? 60 + int(40) : undefined,
        vlanTags,
      }),
    );
  }
  return list;
}

/** IPv4 header offset of a template, assuming its VLAN tags are intact. */
function ipOffsetOf(t: Uint8Array): number {
  let p = 14;
  while ((t[p - 2] === 0x81 && t[p - 1] === 0x00) || (t[p - 2] === 0x88 && t[p - 1] === 0xa8)) p += 4;
  return p;
}

test(`mutated valid frames never break parseFrame (seed ${SEED})`, () => {
  const counts = new Uint32Array(DROP_REASON_COUNT);
  const list = templates();
  for (let n = 0; n < ITERATIONS; n++) {
    const t = list[int(list.length)]!;
    const start = int(SLACK);
    buf.fill(0xee);
    buf.set(t, start);
    let length = t.length;
    const ip = start + ipOffsetOf(t);

    const mutations = int(4);
    for (let m = 0; m < mutations; m++) {
      switch (int(6)) {
        case 0: // flip one bit anywhere
          flipBit(start + int(length), int(8));
          break;
        case 1: // random byte, mostly in the headers
          buf[rand() < 0.8 ? ip - 4 + int(48) : start + int(length)] = int(256);
          break;
        case 2: // truncate
          length = int(length + 1);
          break;
        case 3: // extend with garbage past the frame
          length = Math.min(length + int(64), buf.length - start);
          break;
        case 4: {
          // small value into an IPv4 or UDP length field
          const field = [ip + 2, ip + 4 + ((buf[ip]! & 0x0f) << 2)][int(2)]!;
          const v = int(80);
          buf[field] = v >>> 8;
          buf[field + 1] = v & 0xff;
          break;
        }
        default: // set IHL/version nibble or protocol/fragment fields
          if (rand() < 0.5) buf[ip] = int(256);
          else buf[ip + [6, 7, 9][int(3)]!] = int(256);
      }
    }
    // Usually repair the checksum so the checks behind it get exercised too.
    if (rand() < 0.7) {
      const hl = (buf[ip]! & 0x0f) * 4;
      if (hl >= 20 && ip + hl <= buf.length) {
        const c = ipv4HeaderChecksum(buf, ip, hl);
        buf[ip + 10] = c >>> 8;
        buf[ip + 11] = c & 0xff;
      }
    }
    check(start, length, counts);
  }
  // Every reason should be reachable from these mutations; a missing one means the fuzzer
  // lost its reach, not that the parser is wrong.
  for (let code = 0; code < DROP_REASON_COUNT; code++) {
    assert.ok(counts[code]! > 0, `never saw ${dropReasonName(code)} (seed ${SEED}): ${summary(counts)}`);
  }
});
