/**
 * A plain JSON client for the node agent's few API calls (pods, pod status, the node, its Lease, events),
 * with the kubeconfig's server, CA and credentials. Plain objects in and out, as the watch delivers them:
 * no typed models, and a patch's content type chosen per call.
 */
import https from 'node:https';
import http from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';

export interface KubeResponse<T = unknown> {
  status: number;
  body: T;
}

export const MERGE_PATCH = 'application/merge-patch+json';

export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly method: string,
    readonly path: string,
    readonly body: unknown,
  ) {
    const msg = (body as { message?: string } | undefined)?.message ?? (typeof body === 'string' ? body : '');
    super(`${method} ${path}: ${status} ${msg}`.trim());
    this.name = 'KubeApiError';
  }
}

export class KubeJson {
  private readonly server: URL;
  private agentCache: https.Agent | undefined;

  constructor(private readonly kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster: set current-context');
    this.server = new URL(cluster.server);
  }

  /** Resolves with any status; `ok` below throws on a non-2xx one. */
  async request<T = unknown>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<KubeResponse<T>> {
    const opts: https.RequestOptions = {
      method,
      protocol: this.server.protocol,
      hostname: this.server.hostname,
      port: this.server.port,
      path,
      headers: { accept: 'application/json' },
    };
    await this.kc.applyToHTTPSOptions(opts);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) {
      const headers = opts.headers as Record<string, string | number>;
      headers['content-type'] = contentType;
      headers['content-length'] = Buffer.byteLength(payload);
    }
    const transport = this.server.protocol === 'https:' ? https : http;
    if (this.server.protocol === 'https:') opts.agent = this.agentFor(opts);
    return new Promise((resolve, reject) => {
      const req = transport.request(opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, body: parsed as T });
        });
        res.on('error', reject);
      });
      req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: no answer from the API server within 30 s`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** One keep-alive agent with the kubeconfig's TLS settings (they do not change while the agent runs). */
  private agentFor(opts: https.RequestOptions): https.Agent {
    this.agentCache ??= new https.Agent({ keepAlive: true, maxSockets: 8, ca: opts.ca, cert: opts.cert, key: opts.key, rejectUnauthorized: opts.rejectUnauthorized });
    return this.agentCache;
  }

  async ok<T = unknown>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const res = await this.request<T>(method, path, body, contentType);
    if (res.status < 200 || res.status > 299) throw new KubeApiError(res.status, method, path, res.body);
    return res.body;
  }

  close(): void {
    this.agentCache?.destroy();
  }
}
