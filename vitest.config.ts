import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// .wgsl files are imported as text, the same way esbuild's text loader does it.
const wgsl = {
  name: 'wgsl-text',
  transform(_code: string, id: string) {
    if (!id.endsWith('.wgsl')) return null;
    return { code: `export default ${JSON.stringify(readFileSync(id, 'utf8'))};`, map: null };
  },
};

// Golden fixtures live in ../shared beside the repo (CI clones it there too); the Chromium tests fetch
// them through Vite's /@fs/ route, which needs that folder allowed and its absolute path.
const goldenDir = fileURLToPath(new URL('../shared/golden/', import.meta.url));

const chromiumArgs = ['--enable-unsafe-webgpu', ...(process.getuid?.() === 0 ? ['--no-sandbox'] : [])];

export default defineConfig({
  plugins: [wgsl],
  test: {
    projects: [
      { plugins: [wgsl], test: { name: 'node', environment: 'node', include: ['test/**/*.test.ts'], exclude: ['test/**/*.browser-skip.test.ts'], testTimeout: 300_000, hookTimeout: 300_000, pool: 'forks', fileParallelism: false } },
      {
        plugins: [wgsl],
        define: { __HLIP_GOLDEN_DIR__: JSON.stringify(goldenDir) },
        server: { fs: { allow: ['..'] } },
        test: {
          name: 'chromium',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.node.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
          browser: {
            enabled: true,
            headless: true,
            provider: playwright({ launchOptions: { executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: chromiumArgs } }),
            instances: [{ browser: 'chromium' }],
          },
        },
      },
    ],
  },
});
