/** GET /openapi.json on the call listener: the document with the limits this gateway runs with. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { OPENAPI_PATH, buildOpenApiDocument } from './openapi';

/** A handler that answers GET/HEAD /openapi.json and returns true, or returns false for any other request. */
export function serveOpenApi(config: object): (req: IncomingMessage, res: ServerResponse) => boolean {
  const body = Buffer.from(JSON.stringify(buildOpenApiDocument({ config: config as Record<string, unknown> })));
  return (req, res) => {
    if ((req.url ?? '/').split('?', 1)[0] !== OPENAPI_PATH) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
