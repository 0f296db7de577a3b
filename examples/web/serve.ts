/**
 * Serves the example page (index.html, app.js) and Space Cloud's client as one browser script
 * (/space-api.js: `space-api` ships CommonJS for Node only, so esbuild bundles it once at start, with the
 * browser's fetch and WebSocket in place of node-fetch and ws).
 *
 *   npm start                          # the mesh: gateway on http://127.0.0.1:8080
 *   node dist/examples/web/serve.js    # this page on http://localhost:3000 (PORT=... to change)
 *
 * The page's origin (http://localhost:3000) is not the gateway's: the browser asks the gateway first
 * (CORS), and `fnmesh local` allows http://localhost:* and http://127.0.0.1:* by default.
 */
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { build } from 'esbuild';

/** The folder of index.html: this file's own when run from the sources, examples/web when built to dist/. */
const WEB_DIR = existsSync(path.join(__dirname, 'index.html'))
  ? __dirname
  : path.resolve(__dirname, '..', '..', '..', 'examples', 'web');

const PAGES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
};

/** space-api as an IIFE that sets the global `Space` (`new Space.API(project, url)`). */
export async function bundleSpaceApi(): Promise<string> {
  const result = await build({
    entryPoints: [require.resolve('space-api')],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    globalName: 'Space',
    target: 'es2020',
    minify: true,
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

export interface WebExample {
  /** One URL per host it listens on, e.g. http://127.0.0.1:3000. */
  urls: string[];
  port: number;
  close(): Promise<void>;
}

/** Serves the page on each of `hosts` (loopback addresses), on one port (0 picks a free one). */
export async function startWebExample(options: { hosts?: string[]; port?: number } = {}): Promise<WebExample> {
  const spaceApi = await bundleSpaceApi();
  const handler: http.RequestListener = (req, res) => {
    let pathname: string;
    try {
      pathname = new URL(req.url ?? '/', 'http://page').pathname;
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('bad request: the path is not a valid URL path\n');
      return;
    }
    if (pathname === '/space-api.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
      res.end(spaceApi);
      return;
    }
    const page = PAGES[pathname];
    if (!page || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found: this server serves /, /app.js and /space-api.js\n');
      return;
    }
    res.writeHead(200, { 'content-type': page.type, 'cache-control': 'no-store' });
    res.end(readFileSync(path.join(WEB_DIR, page.file)));
  };
  const servers: http.Server[] = [];
  let port = options.port ?? 0;
  for (const host of options.hosts ?? ['127.0.0.1']) {
    const server = http.createServer(handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    port = (server.address() as AddressInfo).port;
    servers.push(server);
  }
  const urls = (options.hosts ?? ['127.0.0.1']).map((h) => `http://${h}:${port}`);
  const close = async (): Promise<void> => {
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
  };
  return { urls, port, close };
}

if (require.main === module) {
  const port = Number(process.env.PORT ?? 3000);
  startWebExample({ port }).then(
    (web) => {
      console.log(
        `example page on http://localhost:${web.port}/ (calls the gateway at http://127.0.0.1:8080; ?gateway=URL to change)`,
      );
    },
    (err: unknown) => {
      console.error(
        `cannot serve the example page on port ${port}: ${err instanceof Error ? err.message : String(err)}`,
      );
      process.exit(1);
    },
  );
}
