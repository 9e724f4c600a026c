// The page's side of the worker protocol: typed calls that resolve with the worker's result, progress
// callbacks, and cooperative cancel (the worker stops at its next check and answers 'cancelled').
import type { CallType, Calls, Progress, Reply, Request } from '../protocol.js';

export class CancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledError';
  }
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  onProgress: ((p: Progress) => void) | undefined;
}

export interface Call<T> {
  id: number;
  result: Promise<T>;
}

export class WorkerClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly worker: Worker) {
    worker.onmessage = (ev: MessageEvent<Reply>) => this.receive(ev.data);
    // A worker that fails to start or throws outside a request fails everything in flight.
    worker.onerror = (ev) => {
      const err = new Error(`worker error: ${ev.message || 'failed to start'}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
  }

  call<K extends CallType>(type: K, req: Calls[K]['req'], onProgress?: (p: Progress) => void): Call<Calls[K]['res']> {
    const id = this.nextId++;
    const result = new Promise<Calls[K]['res']>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onProgress });
    });
    this.worker.postMessage({ id, type, req } as Request);
    return { id, result };
  }

  cancel(target: number): void {
    if (this.pending.has(target)) this.worker.postMessage({ id: this.nextId++, type: 'cancel', target } as Request);
  }

  private receive(m: Reply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.type === 'progress') {
      p.onProgress?.(m.progress);
      return;
    }
    this.pending.delete(m.id);
    if (m.type === 'done') p.resolve(m.result);
    else p.reject(m.cancelled ? new CancelledError() : new Error(m.message));
  }
}
