export { QPACK_DECOMPRESSION_FAILED, QpackError, type QpackErrorKind } from './errors.js';
export { decodePrefixedInteger, encodePrefixedInteger, type DecodedInteger } from './prefixed-integer.js';
export { HUFFMAN_EOS, HUFFMAN_TABLE, huffmanDecode, huffmanEncode, huffmanEncodedLength } from './huffman.js';
export {
  QPACK_STATIC_TABLE,
  QPACK_STATIC_TABLE_SIZE,
  findStaticExact,
  findStaticName,
  staticEntry,
} from './static-table.js';
export { encodeFieldSection, type HeaderField, type QpackEncodeOptions } from './encoder.js';
export {
  DEFAULT_MAX_FIELD_SECTION_SIZE,
  FIELD_OVERHEAD,
  decodeFieldSection,
  maxEncodedFieldSectionSize,
  type DecodedFieldSection,
  type QpackDecodeOptions,
} from './decoder.js';
