#!/usr/bin/env node
// `npm run web`: serves the built browser app (dist/web) on 127.0.0.1 only. Usage:
//   node scripts/serve-web.mjs [--port 8080] [--dir dist/web]
// A tiny static server: GET/HEAD of files under the folder, nothing else. The Content-Security-Policy
// header repeats the page's own: no request may leave the app's origin.
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json', '.map': 'application/json', '.safetensors': 'application/octet-stream',
};
export const CSP = "default-src 'self'; script-src 'self'; worker-src 'self'; connect-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; form-action 'none'";

/** Starts the server; resolves with it and its URL once listening (port 0: a free port). */
export function serveWeb(dir = 'dist/web', port = 8080) {
  const root = resolve(dir);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(root, path.endsWith('/') ? path + 'index.html' : path));
    let st = null;
    try {
      st = (file === root || file.startsWith(root + sep)) && (req.method === 'GET' || req.method === 'HEAD') ? statSync(file) : null;
    } catch {
      st = null;
    }
    if (!st?.isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': st.size, 'cache-control': 'no-store', 'content-security-policy': CSP });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => ok({ server, url: `http://127.0.0.1:${server.address().port}/` }));
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (k, d) => {
    const i = process.argv.indexOf(`--${k}`);
    return i > 0 ? process.argv[i + 1] : d;
  };
  const { url } = await serveWeb(arg('dir', 'dist/web'), Number(arg('port', process.env.PORT ?? 8080)));
  console.log(`HLIP web app: ${url}  (Chromium/Chrome with WebGPU; on Linux without a GPU start it with --enable-unsafe-webgpu)`);
}
