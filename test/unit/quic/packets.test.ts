import { describe, expect, it } from '@jest/globals';
import { CONNECTION_ID_LENGTH, connectionIdKey, routingHeader, splitCoalescedPackets } from '../../../src/quic/packets.js';

/** A long header packet (RFC 9000 §17.2) of `type` with a payload of `payloadLength` bytes. */
function longPacket(type: 0 | 1 | 2, payloadLength: number, dcid = Buffer.alloc(8, 0xaa), scid = Buffer.alloc(8, 0xbb)): Buffer {
  const parts: Buffer[] = [Buffer.of(0xc0 | (type << 4)), Buffer.from([0, 0, 0, 1]), Buffer.of(dcid.length), dcid, Buffer.of(scid.length), scid];
  if (type === 0) parts.push(Buffer.of(0)); // empty token
  parts.push(Buffer.of(0x40 | (payloadLength >> 8), payloadLength & 0xff), Buffer.alloc(payloadLength, type + 1)); // 2-byte length varint
  return Buffer.concat(parts);
}

function shortPacket(length: number): Buffer {
  return Buffer.concat([Buffer.of(0x40), Buffer.alloc(CONNECTION_ID_LENGTH, 0xcc), Buffer.alloc(length, 9)]);
}

describe('splitCoalescedPackets (RFC 9000 §12.2)', () => {
  it('returns a lone short header packet as it is', () => {
    const packet = shortPacket(40);
    expect(splitCoalescedPackets(packet)).toEqual([packet]);
  });

  it('splits Initial + Handshake + 1-RTT packets of one datagram at their lengths', () => {
    const initial = longPacket(0, 300);
    const handshake = longPacket(2, 120);
    const short = shortPacket(50);
    const parts = splitCoalescedPackets(Buffer.concat([initial, handshake, short]));
    expect(parts.map((p) => Buffer.from(p))).toEqual([initial, handshake, short]);
  });

  it('keeps a truncated long header packet whole instead of reading past the datagram', () => {
    const truncated = longPacket(0, 300).subarray(0, 100);
    expect(splitCoalescedPackets(truncated)).toEqual([truncated]);
  });
});

describe('routingHeader', () => {
  it('reads the destination id of a short header packet at our connection id length', () => {
    const header = routingHeader(shortPacket(30));
    expect(header).toMatchObject({ long: false, initial: false });
    expect(Buffer.from(header?.dcid ?? [])).toEqual(Buffer.alloc(CONNECTION_ID_LENGTH, 0xcc));
  });

  it('reads version, ids and the Initial type of a long header packet', () => {
    const header = routingHeader(longPacket(0, 1200));
    expect(header).toMatchObject({ long: true, version: 1, initial: true });
    expect(Buffer.from(header?.dcid ?? [])).toEqual(Buffer.alloc(8, 0xaa));
    expect(Buffer.from(header?.scid ?? [])).toEqual(Buffer.alloc(8, 0xbb));
    expect(routingHeader(longPacket(2, 50))).toMatchObject({ long: true, initial: false });
  });

  it('refuses datagrams too short to be QUIC, or with ids longer than 20 bytes', () => {
    expect(routingHeader(Buffer.alloc(0))).toBeUndefined();
    expect(routingHeader(Buffer.of(0x40, 1, 2))).toBeUndefined();
    const bad = longPacket(0, 10);
    bad[5] = 21;
    expect(routingHeader(bad)).toBeUndefined();
  });

  it('gives equal ids equal keys', () => {
    expect(connectionIdKey(Buffer.from('abc'))).toBe(connectionIdKey(Uint8Array.from([0x61, 0x62, 0x63])));
  });
});
