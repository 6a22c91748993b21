/**
 * One-dimensional arrays in PostgreSQL's binary wire format (`array_send`/`array_recv`), for the
 * group commit's parameters. node-postgres sends a Buffer parameter as binary, so a batch of a
 * few hundred 1 KiB bodies reaches the server as length-prefixed bytes: no escaping into an array
 * literal on our side, no `array_in` parsing character by character on the server's. The server
 * checks the element type against the parameter's declared type (`$1::bytea[]`) and refuses a
 * mismatch, so a wrong encoder fails loudly rather than storing something else.
 */

/** Element type OIDs (pg_type.oid) of the types the commit sends. */
const OID = { bytea: 17, int8: 20, text: 25, jsonb: 3802 } as const;

/** jsonb's binary format: a version byte, then the JSON text. */
const JSONB_VERSION = 1;

/** `bytea[]` */
export function byteaArray(items: readonly Uint8Array[]): Buffer {
  return bytesArray(OID.bytea, items);
}

/** `text[]` (UTF-8) */
export function textArray(items: readonly string[]): Buffer {
  return bytesArray(OID.text, items.map((s) => Buffer.from(s, 'utf8')));
}

/** `jsonb[]` from JSON texts the caller has already serialised. */
export function jsonbArray(items: readonly string[]): Buffer {
  const encoded = items.map((s) => Buffer.from(s, 'utf8'));
  return encode(OID.jsonb, encoded.map((b) => b.byteLength + 1), (buf, at, i) => {
    buf[at] = JSONB_VERSION;
    buf.set(encoded[i]!, at + 1);
  });
}

/** `bigint[]` from safe integers. */
export function int8Array(items: readonly number[]): Buffer {
  return encode(OID.int8, items.map(() => 8), (buf, at, i) => {
    buf.writeBigInt64BE(BigInt(items[i]!), at);
  });
}

/** Elements that are their bytes as they are. */
function bytesArray(oid: number, items: readonly Uint8Array[]): Buffer {
  return encode(oid, items.map((b) => b.byteLength), (buf, at, i) => {
    buf.set(items[i]!, at);
  });
}

/**
 * Header: ndim, has-nulls flag, element OID, then (length, lower bound) per dimension; then each
 * element as an int32 length and its bytes. An empty array has no dimensions.
 */
function encode(oid: number, lengths: readonly number[], write: (buf: Buffer, at: number, i: number) => void): Buffer {
  const n = lengths.length;
  let size = n === 0 ? 12 : 20;
  for (const len of lengths) size += 4 + len;
  const buf = Buffer.allocUnsafe(size);
  buf.writeInt32BE(n === 0 ? 0 : 1, 0);
  buf.writeInt32BE(0, 4);
  buf.writeUInt32BE(oid, 8);
  if (n === 0) return buf;
  buf.writeInt32BE(n, 12);
  buf.writeInt32BE(1, 16);
  let at = 20;
  for (let i = 0; i < n; i++) {
    const len = lengths[i]!;
    buf.writeInt32BE(len, at);
    write(buf, at + 4, i);
    at += 4 + len;
  }
  return buf;
}
