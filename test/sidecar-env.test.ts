/**
 * The sidecar's environment is one contract (common/sidecar-env.ts): what the operator puts in a pod and
 * what the local mesh gives a process must both load in the sidecar's own config reader, with the values
 * of the manifest they came from, for every example manifest.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { V1EnvVar } from '@kubernetes/client-node';
import { DEFAULT_FUNCTION, loadManifestFile, type FunctionService } from '../common/manifest';
import { FUNCTION_ENV } from '../common/function-protocol';
import { SIDECAR_ENV } from '../common/sidecar-env';
import { desiredState, functionProcessEnv, sidecarProcessEnv } from '../local';
import { desiredDeployment, loadOperatorConfig, sidecarContainer, type ClusterFunctionService } from '../operator';
import { loadSidecarConfig } from '../sidecar/config';

const examplesDir = path.join(__dirname, '..', 'examples');
const exampleFiles = readdirSync(examplesDir)
  .filter((f) => /\.ya?ml$/.test(f))
  .map((f) => path.join(examplesDir, f));
const SIDECAR_VARIABLES = new Set<string>(Object.values(SIDECAR_ENV));

const POD_NAME = 'svc-6f7d9c8b5-x2x7q';
const SECRET_VALUE = 's3cret';

/** What the container sees: fieldRefs and secretKeyRefs resolved as the kubelet would. */
function containerEnv(env: V1EnvVar[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env) {
    if (e.value !== undefined) out[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') out[e.name] = POD_NAME;
    else if (e.valueFrom?.secretKeyRef) out[e.name] = SECRET_VALUE;
    else throw new Error(`${e.name}: unexpected env source ${JSON.stringify(e.valueFrom)}`);
  }
  return out;
}

function expectManifestValues(fs: FunctionService, loaded: ReturnType<typeof loadSidecarConfig>): void {
  expect(loaded.namespace).toBe(fs.metadata.namespace);
  expect(loaded.service).toBe(fs.metadata.name);
  expect(loaded.functions).toEqual(fs.spec.functions.map((f) => f.name).filter((n) => n !== DEFAULT_FUNCTION));
  expect(loaded.functions).not.toContain(DEFAULT_FUNCTION);
  expect(loaded.healthPath).toBe(fs.spec.healthPath);
  expect(loaded.concurrency).toBe(fs.spec.concurrency);
  expect(loaded.timeoutMs).toBe(fs.spec.timeoutMs);
}

const services: [string, FunctionService][] = [];
beforeAll(async () => {
  for (const file of exampleFiles) for (const fs of await loadManifestFile(file)) services.push([file, fs]);
  expect(services.length).toBeGreaterThanOrEqual(exampleFiles.length);
});

test('there are example manifests to check', () => {
  expect(exampleFiles.length).toBeGreaterThan(0);
});

test('in a cluster: the operator’s sidecar env loads with the manifest’s values', () => {
  const cfg = loadOperatorConfig({
    FNMESH_SIDECAR_IMAGE: 'ghcr.io/fnmesh/fnmesh:0.1.0',
    FNMESH_SIDECAR_NATS_URL: 'nats://nats.fnmesh-system:4222',
    FNMESH_SIDECAR_NATS_TOKEN_SECRET: 'nats-auth/token',
    FNMESH_NATS_AUTH: 'none',
  }).sidecar;
  for (const [, fs] of services) {
    const env = sidecarContainer(fs, cfg).env!;
    for (const e of env) expect(SIDECAR_VARIABLES).toContain(e.name);
    const loaded = loadSidecarConfig(containerEnv(env));
    expectManifestValues(fs, loaded);
    expect(loaded.natsServers).toEqual(['nats://nats.fnmesh-system:4222']);
    expect(loaded.natsToken).toBe(SECRET_VALUE);
    expect(loaded.functionPort).toBe(fs.spec.port);
    expect(loaded.opsListen).toEqual({ host: '0.0.0.0', port: cfg.opsPort });
    expect(loaded.callListen).toEqual({ host: '127.0.0.1', port: cfg.callPort });
    expect(loaded.drainTimeoutMs).toBe(cfg.drainTimeoutMs);
    expect(loaded.replicaId).toBe(POD_NAME);
  }
});

test('locally: the local mesh’s sidecar env loads with the manifest’s values', () => {
  const desired = desiredState(
    services.map(([file, service]) => ({ service, file })),
    examplesDir,
  );
  const local = services.filter(([, fs]) => fs.spec.local);
  expect(local.length).toBeGreaterThan(0);
  for (const [, fs] of local) {
    const plan = desired.services.get(`${fs.metadata.namespace}/${fs.metadata.name}`)!;
    const ports = { fnPort: 40001, opsPort: 40002, callPort: 40003 };
    const env = sidecarProcessEnv({
      plan,
      id: 'svc-0',
      ports,
      base: { PATH: '/usr/bin' },
      natsUrl: 'nats://127.0.0.1:4222',
      natsToken: 'local-token',
      logLevel: 'debug',
    });
    for (const name of Object.keys(env).filter((n) => n.startsWith('FNMESH_')))
      expect(SIDECAR_VARIABLES).toContain(name);
    const loaded = loadSidecarConfig(env);
    expectManifestValues(fs, loaded);
    expect(loaded.natsServers).toEqual(['nats://127.0.0.1:4222']);
    expect(loaded.natsToken).toBe('local-token');
    expect(loaded.functionPort).toBe(ports.fnPort);
    expect(loaded.opsListen).toEqual({ host: '127.0.0.1', port: ports.opsPort });
    expect(loaded.callListen).toEqual({ host: '127.0.0.1', port: ports.callPort });
    expect(loaded.drainTimeoutMs).toBe(fs.spec.timeoutMs);
    expect(loaded.replicaId).toBe('svc-0');
    expect(loaded.logLevel).toBe('debug');
  }
});

test('the examples hold a `default` rule holder, so the checks above see it left out', () => {
  expect(services.some(([, fs]) => fs.spec.functions.some((f) => f.name === DEFAULT_FUNCTION))).toBe(true);
});

test('the function’s environment is the same contract in a pod and locally: its port and its sidecar’s call API', () => {
  const cfg = loadOperatorConfig({
    FNMESH_SIDECAR_IMAGE: 'ghcr.io/fnmesh/fnmesh:0.1.0',
    FNMESH_SIDECAR_NATS_URL: 'nats://nats.fnmesh-system:4222',
  }).sidecar;
  const desired = desiredState(
    services.map(([file, service]) => ({ service, file })),
    examplesDir,
  );
  const names = new Set<string>(Object.values(FUNCTION_ENV));
  for (const [, fs] of services) {
    if (fs.spec.container) {
      const pod = desiredDeployment({ ...fs, metadata: { ...fs.metadata, uid: 'u-1' } } as ClusterFunctionService, cfg)
        .spec!.template.spec!;
      const fn = pod.containers.find((c) => c.name === 'function')!;
      const env = containerEnv(fn.env!.filter((e) => names.has(e.name)));
      const sidecar = loadSidecarConfig(containerEnv(sidecarContainer(fs, cfg).env!));
      expect(env).toEqual({
        [FUNCTION_ENV.port]: String(sidecar.functionPort),
        [FUNCTION_ENV.sidecarUrl]: `http://127.0.0.1:${sidecar.callListen.port}`,
      });
    }
    if (fs.spec.local) {
      const plan = desired.services.get(`${fs.metadata.namespace}/${fs.metadata.name}`)!;
      const placement = {
        plan,
        id: 'svc-0',
        ports: { fnPort: 40001, opsPort: 40002, callPort: 40003 },
        base: { PATH: '/usr/bin' },
        natsUrl: 'nats://127.0.0.1:4222',
        logLevel: 'info',
      };
      const env = functionProcessEnv(placement);
      const sidecar = loadSidecarConfig(sidecarProcessEnv(placement));
      // Only the function's own variables: nothing of the sidecar's (its settings, its NATS credentials).
      expect(
        Object.keys(env)
          .filter((n) => n.startsWith('FNMESH_') || n === 'PORT')
          .sort(),
      ).toEqual([...names].sort());
      expect(env[FUNCTION_ENV.port]).toBe(String(sidecar.functionPort));
      expect(env[FUNCTION_ENV.sidecarUrl]).toBe(`http://127.0.0.1:${sidecar.callListen.port}`);
    }
  }
});
