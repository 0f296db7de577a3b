/**
 * The function protocol: what a function process is promised by the sidecar beside it and by whoever starts
 * it (the operator's Deployment, the local mesh). One definition of the headers the sidecar sends with each
 * call, the environment the function is started with, and the path of the sidecar's localhost call API; the
 * sidecar, the operator, the local mesh and the SDK all import it. Dependency-free on purpose: the SDK (which
 * has no dependencies) imports it.
 */

/** HTTP header names on the sidecar → function hop and on the sidecar's localhost call API. */
export const FUNCTION_HEADERS = {
  requestId: 'x-fnmesh-request-id',
  /** Absolute deadline, epoch milliseconds on this machine's clock. */
  deadline: 'x-fnmesh-deadline',
  timeoutMs: 'x-fnmesh-timeout-ms',
  /** Verified claims: base64url of their JSON (absent for anonymous calls). */
  claims: 'x-fnmesh-claims',
  /** `namespace/service` of the calling service (absent for calls from outside the mesh). */
  caller: 'x-fnmesh-caller',
  traceparent: 'traceparent',
  /**
   * Which attempt of the call this is, when it is not the first (absent on the first). A retried call keeps its
   * request id, so a function can use x-fnmesh-request-id as an idempotency key.
   */
  attempt: 'x-fnmesh-attempt',
} as const;

/** The environment every function process gets (a FunctionService may not set these itself). */
export const FUNCTION_ENV = {
  /** The port to serve HTTP on, on 127.0.0.1. */
  port: 'PORT',
  /** Base URL of the sidecar's call API (calls to other functions). */
  sidecarUrl: 'FNMESH_SIDECAR_URL',
} as const;

export type FunctionEnvName = (typeof FUNCTION_ENV)[keyof typeof FUNCTION_ENV];

/** The port a function serves on when nothing says otherwise (the manifest's `spec.port` default). */
export const DEFAULT_FUNCTION_PORT = 8080;
/** The sidecar's call API port when nothing says otherwise. */
export const DEFAULT_CALL_API_PORT = 3500;

/** Path prefix of the call API: `POST /v1/call/{service}/{function}` or `/v1/call/{namespace}/{service}/{function}`. */
export const CALL_API_PREFIX = '/v1/call/';

export function callApiPath(service: string, fn: string, namespace?: string): string {
  const parts = namespace === undefined ? [service, fn] : [namespace, service, fn];
  return CALL_API_PREFIX + parts.map(encodeURIComponent).join('/');
}

/** The URL a function reaches its sidecar's call API on, given the call API's port. */
export function sidecarUrl(callApiPort: number): string {
  return `http://127.0.0.1:${callApiPort}`;
}

/** The function process's environment, in a fixed order: where it serves and where its sidecar is. */
export function functionEnv(p: {
  functionPort: number;
  callApiPort: number;
}): { name: FunctionEnvName; value: string }[] {
  return [
    { name: FUNCTION_ENV.port, value: String(p.functionPort) },
    { name: FUNCTION_ENV.sidecarUrl, value: sidecarUrl(p.callApiPort) },
  ];
}
