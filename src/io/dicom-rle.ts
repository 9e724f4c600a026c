// DICOM RLE Lossless (transfer syntax 1.2.840.10008.1.2.5, PS3.5 Annex G) for one grayscale frame.
// A frame is a 64-byte header (segment count, 15 segment offsets) followed by PackBits segments;
// segment s holds byte s (most significant first) of every pixel.
import { FormatError } from '../errors.js';

/**
 * Decode one RLE frame of `pixels` grayscale samples of `bytesPerSample` bytes each into
 * little-endian sample bytes. Output size is fixed by the caller, never by the data.
 */
export function decodeRleFrame(frame: Uint8Array, pixels: number, bytesPerSample: number, source: string): Uint8Array {
  if (frame.byteLength < 64) throw new FormatError(source, `RLE frame of ${frame.byteLength} bytes is shorter than its 64-byte header`);
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const nseg = dv.getUint32(0, true);
  if (nseg !== bytesPerSample) throw new FormatError(source, `RLE frame has ${nseg} segments; ${bytesPerSample} expected for ${bytesPerSample * 8}-bit grayscale`);
  const offsets: number[] = [];
  for (let s = 0; s < nseg; s++) offsets.push(dv.getUint32(4 + 4 * s, true));
  const out = new Uint8Array(pixels * bytesPerSample);
  for (let s = 0; s < nseg; s++) {
    const start = offsets[s] as number;
    const end = s + 1 < nseg ? (offsets[s + 1] as number) : frame.byteLength;
    if (start < 64 || start > frame.byteLength || end < start || end > frame.byteLength) {
      throw new FormatError(source, `RLE segment ${s} offsets ${start}..${end} lie outside the ${frame.byteLength}-byte frame`);
    }
    // Segment 0 is the most significant byte: in little-endian output it goes last.
    const lane = bytesPerSample - 1 - s;
    let p = start;
    let o = 0;
    while (o < pixels && p < end) {
      const n = (frame[p++] as number) << 24 >> 24;
      if (n >= 0) {
        const count = n + 1;
        if (p + count > end) throw new FormatError(source, `RLE segment ${s}: literal run of ${count} bytes runs past the segment end`);
        for (let k = 0; k < count && o < pixels; k++) out[(o++) * bytesPerSample + lane] = frame[p + k] as number;
        p += count;
      } else if (n !== -128) {
        if (p >= end) throw new FormatError(source, `RLE segment ${s}: replicate run without its byte`);
        const v = frame[p++] as number;
        const count = 1 - n;
        for (let k = 0; k < count && o < pixels; k++) out[(o++) * bytesPerSample + lane] = v;
      }
    }
    if (o < pixels) throw new FormatError(source, `RLE segment ${s} decodes to ${o} of ${pixels} pixels (truncated)`);
  }
  return out;
}
