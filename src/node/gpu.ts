import { Device, type DeviceOptions } from '../gpu/device.js';

/**
 * Creates a Device in Node through the npm `webgpu` package (Dawn). Sets XDG_RUNTIME_DIR when missing,
 * which Mesa's Vulkan drivers want.
 */
export async function createNodeDevice(opts: DeviceOptions = {}): Promise<Device> {
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';
  const mod = (await import('webgpu')) as { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  const flags = (process.env.HLIP_DAWN_FLAGS ?? '').split(/\s+/).filter(Boolean);
  return Device.create({ ...opts, gpu: opts.gpu ?? mod.create(flags) });
}
