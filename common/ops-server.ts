/**
 * The operations endpoints every long-running process serves: /healthz (alive), /readyz (ready to take
 * work, with the reason when not), /metrics (Prometheus text).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

export interface Readiness {
  ready: boolean;
  reason?: string;
}

export interface OpsHandlerOptions {
  registry: Registry;
  readiness: () => Readiness;
  /** Liveness; defaults to always alive. */
  liveness?: () => Readiness;
}

/** Answers the three ops paths and returns true; returns false for any other path. */
export function handleOps(req: IncomingMessage, res: ServerResponse, options: OpsHandlerOptions): boolean {
  const url = req.url ?? '/';
  const pathOnly = url.split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (pathOnly === '/healthz' || pathOnly === '/readyz') {
    const state = pathOnly === '/healthz' ? (options.liveness?.() ?? { ready: true }) : options.readiness();
    const body = JSON.stringify(
      state.ready ? { status: 'ok' } : { status: 'unavailable', reason: state.reason ?? 'not ready' },
    );
    res.writeHead(state.ready ? 200 : 503, { 'content-type': 'application/json' });
    res.end(body);
    return true;
  }
  if (pathOnly === '/metrics') {
    options.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': options.registry.contentType });
        res.end(text);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(err));
      },
    );
    return true;
  }
  return false;
}
