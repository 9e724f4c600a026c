import type { Server } from 'node:http';

/** The Content-Security-Policy header the server sends (the page's own policy). */
export declare const CSP: string;
/** Serves `dir` (default dist/web) on 127.0.0.1:`port` (0: a free port); resolves once listening. */
export declare function serveWeb(dir?: string, port?: number): Promise<{ server: Server; url: string }>;
