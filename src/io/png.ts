// Minimal PNG writer (browser-safe): 8-bit RGB or RGBA, filter 0 on every row, one IDAT chunk whose
// zlib stream comes from CompressionStream('deflate') (Node ≥ 18 and browsers have it).
import { HlipError, ShapeError } from '../errors.js';
import { crc32 } from './zip.js';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

async function zlibDeflate(data: Uint8Array): Promise<Uint8Array> {
  if (typeof CompressionStream === 'undefined') throw new HlipError('io', 'this runtime has no CompressionStream for PNG output');
  const cs = new CompressionStream('deflate');
  const writer = cs.writable.getWriter();
  const done = writer.write(data as Uint8Array<ArrayBuffer>).then(() => writer.close());
  done.catch(() => undefined);
  const out = new Uint8Array(await new Response(cs.readable).arrayBuffer());
  await done;
  return out;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)) >>> 0);
  return out;
}

/** Encodes `pixels` (row-major, `channels` bytes per pixel: 3 = RGB, 4 = RGBA) as a PNG file. */
export async function encodePng(pixels: Uint8Array, width: number, height: number, channels: 3 | 4 = 3): Promise<Uint8Array> {
  if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0)) throw new ShapeError(`PNG size ${width}×${height} must be positive integers`);
  if (pixels.length !== width * height * channels) throw new ShapeError(`PNG ${width}×${height}×${channels} needs ${width * height * channels} bytes, got ${pixels.length}`);
  const stride = width * channels;
  const raw = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) raw.set(pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 4 ? 6 : 2; // colour type: RGBA / RGB
  const parts = [Uint8Array.from(SIGNATURE), chunk('IHDR', ihdr), chunk('IDAT', await zlibDeflate(raw)), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
