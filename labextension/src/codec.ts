/**
 * Decoding of the frame batches the kernel sends.
 *
 * A batch holds `count` frames of `height x width` uint8 pixels, row-major,
 * frame after frame.  Encodings:
 *   - 'raw': the bytes as they are;
 *   - 'zlib': zlib-compressed bytes (RFC 1950, what Python's zlib.compress writes);
 *   - 'zlib-delta': zlib-compressed temporal differences modulo 256: the first
 *     frame of the batch as it is, then frame[t] - frame[t-1] for each pixel.
 */

export interface IFrameBatch {
  start: number;
  count: number;
  height: number;
  width: number;
  encoding: string;
}

async function inflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data]).stream().pipeThrough(new DecompressionStream('deflate'));
  const buffer = await new Response(stream).arrayBuffer();
  return new Uint8Array(buffer);
}

/** Undoes the temporal difference coding in place. */
export function undelta(bytes: Uint8Array, count: number, size: number): Uint8Array {
  for (let t = 1; t < count; t++) {
    const o = t * size;
    const p = o - size;
    for (let i = 0; i < size; i++) {
      bytes[o + i] = (bytes[o + i] + bytes[p + i]) & 255;
    }
  }
  return bytes;
}

/** The frames of a batch, one Uint8Array each. */
export async function decodeBatch(batch: IFrameBatch, buffer: DataView): Promise<Uint8Array[]> {
  let bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  if (batch.encoding === 'zlib' || batch.encoding === 'zlib-delta') {
    bytes = await inflate(bytes);
  } else {
    bytes = bytes.slice();
  }
  const size = batch.height * batch.width;
  if (bytes.length !== size * batch.count) {
    throw new Error(
      `frame batch has ${bytes.length} bytes, expected ${batch.count} x ${batch.height} x ${batch.width}`
    );
  }
  if (batch.encoding === 'zlib-delta') {
    undelta(bytes, batch.count, size);
  }
  const frames: Uint8Array[] = [];
  for (let t = 0; t < batch.count; t++) {
    frames.push(bytes.subarray(t * size, (t + 1) * size));
  }
  return frames;
}

/** Adler-32 checksum (the same as Python's zlib.adler32). */
export function adler32(bytes: Uint8Array): number {
  let a = 1;
  let b = 0;
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const end = Math.min(i + 3800, n);
    for (; i < end; i++) {
      a += bytes[i];
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}
