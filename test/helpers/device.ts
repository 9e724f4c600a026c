// One device per test file, in whichever runtime the file runs: Chromium's navigator.gpu or Dawn in Node.
import { Device } from '../../src/gpu/device.js';
import '../../src/ops/index.js';

let device: Promise<Device> | null = null;

export const inBrowser = typeof window !== 'undefined' && typeof document !== 'undefined';

export function getDevice(): Promise<Device> {
  if (!device) {
    device = (async () => {
      if (inBrowser) return Device.create();
      const path = '../../src/node/gpu.js';
      const mod = (await import(/* @vite-ignore */ path)) as typeof import('../../src/node/gpu.js');
      return mod.createNodeDevice();
    })();
  }
  return device;
}
