/**
 * The sidecar's ops server: the common /healthz, /readyz and /metrics, plus GET /drain, the trigger the
 * kubelet calls from the function container's preStop hook (httpGet is the only HTTP lifecycle handler
 * Kubernetes has) so that the sidecar stops taking calls before the function is signalled.
 *
 * GET /drain answers when the drain is complete: 200 {"status":"drained","inFlight":0}, or, when
 * FNMESH_DRAIN_TIMEOUT_MS passed first, 200 {"status":"timeout","inFlight":N}. Idempotent: every request
 * waits for the same drain. Any other method → 405 (a drain is not something a HEAD should start).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { errorMessage, handleOps, type Logger, type Readiness } from './common';

export interface DrainResult {
  /** `drained`: nothing is in flight; `timeout`: the drain's bound passed with `inFlight` calls left. */
  status: 'drained' | 'timeout';
  inFlight: number;
}

export interface SidecarOpsOptions {
  registry: Registry;
  readiness: () => Readiness;
  /** Starts the drain on the first call; every call returns the same promise. */
  drain: () => Promise<DrainResult>;
  logger: Logger;
}

export const DRAIN_PATH = '/drain';

const JSON_HEADERS = { 'content-type': 'application/json' };

export function createOpsHandler(options: SidecarOpsOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const pathOnly = (req.url ?? '/').split('?')[0];
    if (pathOnly === DRAIN_PATH) {
      req.resume();
      if (req.method !== 'GET') {
        res.writeHead(405, { ...JSON_HEADERS, allow: 'GET' });
        res.end(
          JSON.stringify({
            error: `method ${req.method} is not allowed on ${DRAIN_PATH}; use GET (the kubelet's preStop httpGet)`,
          }),
        );
        return;
      }
      options.logger.info('drain requested', { remote: req.socket.remoteAddress });
      options.drain().then(
        (result) => {
          if (res.destroyed) return;
          res.writeHead(200, JSON_HEADERS);
          res.end(JSON.stringify(result));
        },
        (err: unknown) => {
          options.logger.error('drain failed', { error: errorMessage(err) });
          if (res.destroyed) return;
          res.writeHead(500, JSON_HEADERS);
          res.end(JSON.stringify({ error: `the drain failed: ${errorMessage(err)}` }));
        },
      );
      return;
    }
    if (!handleOps(req, res, { registry: options.registry, readiness: options.readiness })) {
      res.writeHead(404, JSON_HEADERS);
      res.end(JSON.stringify({ error: 'not found; try /healthz, /readyz, /metrics or /drain' }));
    }
  };
}
