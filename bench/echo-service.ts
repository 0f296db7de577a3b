/**
 * The benches' echo service: its manifest (what the gateway reads) and the environment its sidecar gets,
 * built by the one builder every sidecar's starter uses (common/sidecar-env.ts).
 */
import { API_VERSION, KIND } from '../common/crd-names';
import { parseManifests } from '../common/manifest';
import { DEFAULT_DRAIN_TIMEOUT_MS, literalEnv, sidecarEnv } from '../common/sidecar-env';

export const ECHO_MANIFEST = [
  `apiVersion: ${API_VERSION}`,
  `kind: ${KIND}`,
  'metadata: {name: echo, namespace: bench}',
  'spec:',
  '  replicas: 1',
  '  functions:',
  '    - name: echo',
  '      rule: {rule: allow}',
  '',
].join('\n');

export interface EchoSidecarPlacement {
  natsUrl: string;
  fnPort: number;
  opsPort: number;
  callPort: number;
  concurrency: number;
  logLevel: string;
}

/** The echo sidecar's environment on loopback ports. */
export function echoSidecarEnv(p: EchoSidecarPlacement): Record<string, string> {
  const [echo] = parseManifests(ECHO_MANIFEST, 'bench/echo-service.ts');
  return literalEnv(
    sidecarEnv(
      { metadata: echo!.metadata, spec: { ...echo!.spec, concurrency: p.concurrency } },
      {
        natsUrl: p.natsUrl,
        functionPort: p.fnPort,
        opsListen: `127.0.0.1:${p.opsPort}`,
        callListen: `127.0.0.1:${p.callPort}`,
        drainTimeoutMs: DEFAULT_DRAIN_TIMEOUT_MS,
        logLevel: p.logLevel,
      },
    ),
  );
}
