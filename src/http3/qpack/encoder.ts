import { huffmanEncode, huffmanEncodedLength } from './huffman.js';
import { encodePrefixedInteger } from './prefixed-integer.js';
import { findStaticExact, findStaticName } from './static-table.js';

/** One field line: `[name, value]`. Strings carry one octet per character (ISO-8859-1). */
export type HeaderField = readonly [name: string, value: string];

export interface QpackEncodeOptions {
  /** Huffman-code a string when that makes it strictly shorter (default true). */
  readonly huffman?: boolean;
  /**
   * Names whose literal lines get the N ("never index") bit, telling intermediaries never to put
   * them in a dynamic table (RFC 9204 §4.5.4), e.g. `authorization`. Lines that match a static
   * entry exactly are sent as indexed lines, which carry no N bit and reveal nothing.
   */
  readonly neverIndex?: (name: string) => boolean;
}

// RFC 9204 §4.5: field line representations.
const INDEXED_STATIC = 0b1100_0000; // 1 T=1 index(6+)
const LITERAL_NAME_REF_STATIC = 0b0101_0000; // 0 1 N T=1 index(4+)
const LITERAL_NAME_REF_N = 0b0010_0000;
const LITERAL_LITERAL_NAME = 0b0010_0000; // 0 0 1 N H namelen(3+)
const LITERAL_LITERAL_NAME_N = 0b0001_0000;

// RFC 9110 §5.1 token characters, lowercase only (RFC 9114 §4.2); a pseudo-header adds a ':'.
const NAME = /^:?[!#$%&'*+\-.^_`|~0-9a-z]+$/;

function octets(text: string, what: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) throw new RangeError(`${what} has a character above U+00FF at ${i}; encode it first (e.g. base64 in a -bin field)`);
    out[i] = c;
  }
  return out;
}

function checkName(name: string): void {
  if (!NAME.test(name)) throw new RangeError(`invalid field name ${JSON.stringify(name)}: names are lowercase tokens`);
}

function checkValue(name: string, value: string): void {
  // RFC 9114 §4.2 / RFC 9110 §5.5: NUL, CR and LF are never valid in a field value.
  if (/[\0\r\n]/.test(value)) throw new RangeError(`value of ${name} contains NUL, CR or LF`);
}

/** Appends a string literal whose H bit sits just above a `prefixBits` length prefix. */
function writeString(out: number[], text: Uint8Array, prefixBits: number, flags: number, huffman: boolean): void {
  const hBit = 1 << prefixBits;
  if (huffman && text.length > 0 && huffmanEncodedLength(text) < text.length) {
    const coded = huffmanEncode(text);
    encodePrefixedInteger(out, coded.length, prefixBits, flags | hBit);
    for (const b of coded) out.push(b);
  } else {
    encodePrefixedInteger(out, text.length, prefixBits, flags);
    for (const b of text) out.push(b);
  }
}

/**
 * Encodes a header list as a QPACK field section that never refers to the dynamic table:
 * prefix Required Insert Count 0, Delta Base 0; an indexed line for a static exact match, a
 * literal with a static name reference for a static name match, a literal name otherwise.
 * Throws RangeError for a name that is not a lowercase token, a value with NUL/CR/LF, or a
 * character above U+00FF.
 */
export function encodeFieldSection(headers: Iterable<HeaderField>, options: QpackEncodeOptions = {}): Uint8Array {
  const huffman = options.huffman ?? true;
  const out: number[] = [0x00, 0x00];
  for (const [name, value] of headers) {
    checkName(name);
    checkValue(name, value);
    const exact = findStaticExact(name, value);
    if (exact !== undefined) {
      encodePrefixedInteger(out, exact, 6, INDEXED_STATIC);
      continue;
    }
    const never = options.neverIndex?.(name) ?? false;
    const valueOctets = octets(value, `value of ${name}`);
    const nameRef = findStaticName(name);
    if (nameRef !== undefined) {
      encodePrefixedInteger(out, nameRef, 4, LITERAL_NAME_REF_STATIC | (never ? LITERAL_NAME_REF_N : 0));
    } else {
      writeString(out, octets(name, 'name'), 3, LITERAL_LITERAL_NAME | (never ? LITERAL_LITERAL_NAME_N : 0), huffman);
    }
    writeString(out, valueOctets, 7, 0, huffman);
  }
  return Uint8Array.from(out);
}
