import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ERROR_TABLE, FnmeshError, type ErrorCode } from '../common';
import { CALL_ROUTE_PREFIX, CALL_ROUTE_SEGMENTS, parseCallRoute } from './call-path';
import { toHttpError } from './errors-http';
import {
  OPS_PATHS,
  TRANSPORT_STATUSES,
  UNDOCUMENTED_CODES,
  buildOpenApiDocument,
  gatewayLimits,
  renderOpenApiDocument,
} from './openapi';
import { ADMIN_PATHS } from './admin-access';
import { DEFAULT_MAX_BODY_BYTES } from './limits';
import { GATEWAY_SETTINGS } from './settings';

interface Doc {
  openapi: string;
  info: { 'x-fnmesh-limits': Record<string, number> };
  paths: Record<string, Record<string, { responses?: Record<string, unknown> } & Record<string, unknown>>>;
}
const doc = buildOpenApiDocument() as unknown as Doc;
const callPaths = Object.keys(doc.paths).filter((p) => p.startsWith(CALL_ROUTE_PREFIX));
const statusesOf = (p: string): string[] => Object.keys(doc.paths[p]!.post!.responses!);

describe('the OpenAPI document', () => {
  it('is the file committed in docs/openapi.json (run `npm run generate` after changing what it is built from)', () => {
    const committed = readFileSync(path.join(__dirname, '..', 'docs', 'openapi.json'), 'utf8');
    expect(committed).toBe(renderOpenApiDocument());
  });

  it('is OpenAPI 3.1 with the call route under every segment the gateway routes, and the ops endpoints', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(callPaths.sort()).toEqual(
      CALL_ROUTE_SEGMENTS.map((s) => `${CALL_ROUTE_PREFIX}{namespace}/${s}/{service}/{function}`).sort(),
    );
    for (const p of Object.values(OPS_PATHS)) expect(doc.paths[p]?.get).toBeDefined();
    expect(doc.paths['/openapi.json']?.get).toBeDefined();
  });

  it('documents the admin paths with the admin token and the answers of the call port', () => {
    for (const p of ADMIN_PATHS) {
      const op = doc.paths[p]!.get as unknown as { security: object[]; responses: Record<string, unknown> };
      expect(op.security).toContainEqual({ admin: [] });
      expect(Object.keys(op.responses).sort()).toEqual(['200', '401', '404']);
    }
  });

  it('describes paths that the gateway parses as calls', () => {
    for (const p of callPaths) {
      const url = p.replace('{namespace}', 'default').replace('{service}', 'greeter').replace('{function}', 'hello');
      expect(parseCallRoute(url)).toEqual({ namespace: 'default', service: 'greeter', function: 'hello' });
    }
  });

  it('lists every status the error table maps to, with the error schema, and no 500', () => {
    const mapped = (Object.keys(ERROR_TABLE) as ErrorCode[])
      .filter((code) => !UNDOCUMENTED_CODES.includes(code))
      .map((code) => String(toHttpError(new FnmeshError(code)).status));
    const transport = Object.keys(TRANSPORT_STATUSES);
    for (const p of callPaths) {
      const statuses = statusesOf(p);
      for (const s of [...mapped, ...transport, '200', '4XX']) expect(statuses).toContain(s);
      expect(statuses).not.toContain('500');
      for (const s of statuses.filter((x) => x !== '200')) {
        expect(doc.paths[p]!.post!.responses![s]).toMatchObject({
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        });
      }
    }
    for (const s of ['400', '401', '403', '404', '405', '408', '413', '415', '417', '429', '431', '502', '503', '504'])
      expect(statusesOf(callPaths[0]!)).toContain(s);
  });

  it('documents only 502, 503 and 504 among the 5xx a call may get, as every status toHttpError answers for a reply', () => {
    const fiveXX = statusesOf(callPaths[0]!).filter((s) => s.startsWith('5'));
    expect(fiveXX).toEqual(['502', '503', '504']);
    for (let status = 400; status <= 599; status++) {
      const answered = toHttpError(new FnmeshError('function_failed', 'x', status)).status;
      const documented = answered < 500 ? '4XX' : String(answered);
      expect(statusesOf(callPaths[0]!)).toContain(documented);
    }
  });

  it('carries every limit setting of the gateway with its default, or the value in force', () => {
    const limits = doc.info['x-fnmesh-limits'];
    const maxRows = Object.entries(GATEWAY_SETTINGS).filter(([key]) => key.startsWith('max'));
    expect(maxRows.length).toBeGreaterThan(0);
    for (const [key, s] of maxRows)
      expect(limits[s.env]).toBe(key === 'maxBodyBytes' ? DEFAULT_MAX_BODY_BYTES : Number(s.default));
    for (const s of [GATEWAY_SETTINGS.headersTimeoutMs, GATEWAY_SETTINGS.receiveTimeoutMs])
      expect(limits[s.env]).toBe(Number(s.default));
    expect(limits[GATEWAY_SETTINGS.shutdownTimeoutMs.env]).toBeUndefined();
    const custom = buildOpenApiDocument({ config: { maxBodyBytes: 4096, front: { maxHeaderBytes: 8000 } } });
    const customLimits = (custom as unknown as Doc).info['x-fnmesh-limits'];
    expect(customLimits[GATEWAY_SETTINGS.maxBodyBytes.env]).toBe(4096);
    expect(customLimits[GATEWAY_SETTINGS.maxHeaderBytes.env]).toBe(8000);
    const body = gatewayLimits({ maxBodyBytes: 'not a number' }).find(
      (l) => l.env === GATEWAY_SETTINGS.maxBodyBytes.env,
    );
    expect(body?.value).toBe(DEFAULT_MAX_BODY_BYTES);
  });
});
