/**
 * What the driver reads of a QUIC packet header in clear (RFC 9000 §17): where the packets of
 * one datagram begin and end, and the destination connection id a server routes by.
 */

/** Length of the connection ids we issue (server and client). */
export const CONNECTION_ID_LENGTH = 16;

function varint(data: Uint8Array, offset: number): [value: number, length: number] | undefined {
  const first = data[offset];
  if (first === undefined) return undefined;
  const length = 1 << (first >> 6);
  if (offset + length > data.length) return undefined;
  let value = first & 0x3f;
  for (let i = 1; i < length; i++) value = value * 256 + (data[offset + i] as number);
  return [value, length];
}

function readUint32(data: Uint8Array, offset: number): number {
  return (((data[offset] as number) << 24) >>> 0) + ((data[offset + 1] as number) << 16) + ((data[offset + 2] as number) << 8) + (data[offset + 3] as number);
}

/**
 * The QUIC packets of one datagram (RFC 9000 §12.2). quiche stops at the first packet of a
 * datagram it cannot decrypt and drops what is coalesced after it: ngtcp2 closes a handshake
 * with CONNECTION_CLOSE in Initial + Handshake + 1-RTT packets of one datagram, and a client
 * that already discarded its Initial keys then never saw the close. So we hand quiche one
 * packet at a time. Long header packets other than Retry and Version Negotiation carry their
 * length in clear; a short header packet (or anything unparsable) runs to the datagram's end.
 */
export function splitCoalescedPackets(data: Uint8Array): Uint8Array[] {
  const first = data[0];
  // The common case, a short header packet: one packet.
  if (first === undefined || (first & 0x80) === 0) return [data];
  const packets: Uint8Array[] = [];
  let start = 0;
  while (start < data.length) {
    const byte = data[start] as number;
    let end = data.length;
    const version = data.length >= start + 5 ? readUint32(data, start + 1) : 0;
    const type = (byte >> 4) & 0b11;
    if ((byte & 0x80) !== 0 && version !== 0 && type !== 0b11) {
      let offset = start + 5;
      if (offset < data.length) offset += 1 + (data[offset] as number);
      if (offset < data.length) offset += 1 + (data[offset] as number);
      if (type === 0b00) {
        const token = varint(data, offset);
        offset = token === undefined ? data.length : offset + token[1] + token[0];
      }
      const length = varint(data, offset);
      if (length !== undefined && offset + length[1] + length[0] <= data.length) end = offset + length[1] + length[0];
    }
    packets.push(start === 0 && end === data.length ? data : data.subarray(start, end));
    start = end;
  }
  return packets;
}

/** What a server needs of a datagram's first packet to route it. */
export interface RoutingHeader {
  /** Long header (handshake) packet. */
  readonly long: boolean;
  /** Long header: the version (0 = version negotiation). */
  readonly version: number;
  /** Long header Initial packet (version 1 type bits 00). */
  readonly initial: boolean;
  readonly dcid: Uint8Array;
  /** Long header: the source connection id. */
  readonly scid: Uint8Array | undefined;
}

/**
 * The routing fields of a datagram's first packet, or undefined when it is too short to be
 * QUIC. Short header packets carry no length for their destination id: it is ours, so
 * {@link CONNECTION_ID_LENGTH}.
 */
export function routingHeader(data: Uint8Array): RoutingHeader | undefined {
  const first = data[0];
  if (first === undefined) return undefined;
  if ((first & 0x80) === 0) {
    if (data.length < 1 + CONNECTION_ID_LENGTH) return undefined;
    return { long: false, version: 1, initial: false, dcid: data.subarray(1, 1 + CONNECTION_ID_LENGTH), scid: undefined };
  }
  if (data.length < 7) return undefined;
  const version = readUint32(data, 1);
  const dcidLength = data[5] as number;
  if (dcidLength > 20 || data.length < 7 + dcidLength) return undefined;
  const dcid = data.subarray(6, 6 + dcidLength);
  const scidLength = data[6 + dcidLength] as number;
  if (scidLength > 20 || data.length < 7 + dcidLength + scidLength) return undefined;
  const scid = data.subarray(7 + dcidLength, 7 + dcidLength + scidLength);
  return { long: true, version, initial: version === 1 && ((first >> 4) & 0b11) === 0, dcid, scid };
}

/** A map key for a connection id. */
export function connectionIdKey(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('latin1');
}
