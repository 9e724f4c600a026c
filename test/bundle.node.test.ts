import { describe, expect, it } from 'vitest';
import * as esbuild from 'esbuild';

// The core must run in a browser: bundling the library entry for the browser must not reach a Node API.
describe('browser bundle', () => {
  it('src/index.ts bundles for the browser without Node modules', async () => {
    const r = await esbuild.build({
      entryPoints: ['src/index.ts'],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      loader: { '.wgsl': 'text' },
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(r.metafile.inputs);
    expect(inputs.some((f) => f.startsWith('src/node/') || f.startsWith('src/cli/'))).toBe(false);
    const text = r.outputFiles[0]!.text;
    expect(text).not.toMatch(/from ["']node:|require\(["'](fs|path|child_process)["']\)/);
    expect(text.length).toBeGreaterThan(1000);
  });
});
