import type { V1Container, V1EnvVar } from '@kubernetes/client-node';
import { parseFunctionService } from '../common/manifest';
import { loadSidecarConfig } from '../sidecar/config';
import { loadOperatorConfig, type SidecarTemplateConfig } from './config';
import {
  GRACE_MARGIN_SECONDS,
  InvalidSpecError,
  desiredDeployment,
  sidecarContainer,
  type ClusterFunctionService,
} from './desired-deployment';
import { SIDECAR_CONTAINER_NAME, hasNativeSidecar } from './sidecar-injection';
import { CREDS_MOUNT_DIR, CREDS_MOUNT_FILE, credsSecretName, replicaIdentity } from '../common/nats-identity';
import { SIDECAR_ENV } from '../common/sidecar-env';
import { DEFAULT_QUEUE_LENGTH } from '../common/resilience';
import { CREDS_VOLUME_NAME, credsVolume } from './creds-volume';

const cfg: SidecarTemplateConfig = loadOperatorConfig({
  FNMESH_SIDECAR_IMAGE: 'ghcr.io/fnmesh/fnmesh:0.1.0',
  FNMESH_SIDECAR_NATS_URL: 'nats://nats.fnmesh-system:4222',
}).sidecar;

function service(spec: Record<string, unknown> = {}, metadata: Record<string, unknown> = {}): ClusterFunctionService {
  const fs = parseFunctionService(
    {
      apiVersion: 'fnmesh.io/v1alpha1',
      kind: 'FunctionService',
      metadata: { name: 'orders', namespace: 'shop', generation: 3, ...metadata },
      spec: {
        replicas: 2,
        port: 8000,
        container: {
          image: 'example/orders:1',
          command: ['node'],
          args: ['server.js'],
          env: [{ name: 'MODE', value: 'prod' }],
          resources: { limits: { memory: '256Mi' } },
        },
        functions: [{ name: 'create' }, { name: 'default', rule: { rule: 'deny' } }, { name: 'list_all' }],
        ...spec,
      },
    },
    'test',
  );
  return { ...fs, metadata: { ...fs.metadata, uid: 'uid-1234' } };
}

function sidecarOf(fs: ClusterFunctionService, c: SidecarTemplateConfig = cfg): V1Container {
  const init = desiredDeployment(fs, c).spec!.template.spec!.initContainers!;
  const found = init.find((x) => x.name === SIDECAR_CONTAINER_NAME);
  if (!found) throw new Error('no sidecar');
  return found;
}

function functionOf(fs: ClusterFunctionService): V1Container {
  return desiredDeployment(fs, cfg).spec!.template.spec!.containers[0]!;
}

/** The env a container would see: literal values, fieldRefs and secretKeyRefs replaced by samples. */
function envMap(env: V1EnvVar[] | undefined): Record<string, string> {
  const samples: Record<string, string> = { 'metadata.name': 'orders-6f7d9c8b5-x2x7q' };
  const out: Record<string, string> = {};
  for (const e of env ?? []) {
    if (e.value !== undefined) out[e.name] = e.value;
    else if (e.valueFrom?.fieldRef) out[e.name] = samples[e.valueFrom.fieldRef.fieldPath] ?? 'unknown-field';
    else if (e.valueFrom?.secretKeyRef) out[e.name] = 'secret-sample';
  }
  return out;
}

describe('desiredDeployment', () => {
  test('names, labels and owner reference point at the FunctionService', () => {
    const d = desiredDeployment(service(), cfg);
    expect(d).toMatchObject({ apiVersion: 'apps/v1', kind: 'Deployment' });
    expect(d.metadata).toEqual({
      name: 'orders',
      namespace: 'shop',
      labels: {
        'app.kubernetes.io/name': 'orders',
        'app.kubernetes.io/managed-by': 'fnmesh-operator',
        'fnmesh.io/service': 'orders',
      },
      ownerReferences: [
        {
          apiVersion: 'fnmesh.io/v1alpha1',
          kind: 'FunctionService',
          name: 'orders',
          uid: 'uid-1234',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    });
    expect(d.spec!.replicas).toBe(2);
    expect(d.spec!.selector).toEqual({ matchLabels: { 'fnmesh.io/service': 'orders' } });
    expect(d.spec!.template.metadata!.labels).toEqual(d.metadata!.labels);
  });

  test('is deterministic: the same input gives a deep-equal object, and the input is not changed', () => {
    const fs = service();
    const before = structuredClone(fs);
    const a = desiredDeployment(fs, cfg);
    const b = desiredDeployment(structuredClone(fs), cfg);
    expect(b).toEqual(a);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(fs).toEqual(before);
    a.spec!.template.spec!.initContainers![0]!.securityContext!.capabilities!.drop!.push('X');
    expect(desiredDeployment(fs, cfg)).toEqual(b);
  });

  test('injects the sidecar as a native sidecar, first and only once', () => {
    const pod = desiredDeployment(service(), cfg).spec!.template.spec!;
    expect(pod.initContainers!.map((c) => c.name)).toEqual([SIDECAR_CONTAINER_NAME]);
    expect(pod.containers.map((c) => c.name)).toEqual(['function']);
    expect(pod.initContainers![0]!.restartPolicy).toBe('Always');
    expect(hasNativeSidecar(pod)).toBe(true);
  });

  test('the sidecar env is accepted by the sidecar and means what the FunctionService says', () => {
    const env = envMap(sidecarOf(service()).env);
    const sc = loadSidecarConfig(env);
    expect(sc).toMatchObject({
      namespace: 'shop',
      service: 'orders',
      functions: ['create', 'list_all'],
      natsServers: ['nats://nats.fnmesh-system:4222'],
      functionPort: 8000,
      healthPath: '/healthz',
      concurrency: 64,
      timeoutMs: 10_000,
      opsListen: { host: '0.0.0.0', port: 9090 },
      callListen: { host: '127.0.0.1', port: 3500 },
      drainTimeoutMs: 30_000,
      replicaId: 'orders-6f7d9c8b5-x2x7q',
    });
    expect(sc.natsToken).toBeUndefined();
  });

  test('sets only variables the sidecar reads', () => {
    const readBySidecar = new Set([
      'FNMESH_NAMESPACE',
      'FNMESH_SERVICE',
      'FNMESH_FUNCTIONS',
      'FNMESH_NATS_URL',
      'FNMESH_NATS_TOKEN',
      'FNMESH_NATS_CREDS',
      'FNMESH_FUNCTION_PORT',
      'FNMESH_HEALTH_PATH',
      'FNMESH_CONCURRENCY',
      'FNMESH_QUEUE_LENGTH',
      'FNMESH_OUTLIER_DETECTION',
      'FNMESH_TIMEOUT_MS',
      'FNMESH_OPS_LISTEN',
      'FNMESH_CALL_LISTEN',
      'FNMESH_DRAIN_TIMEOUT_MS',
      'FNMESH_REPLICA_ID',
    ]);
    const withToken = { ...cfg, natsAuth: 'none' as const, natsTokenSecret: { name: 'nats-auth', key: 'token' } };
    for (const name of Object.keys(envMap(sidecarOf(service(), withToken).env))) expect(readBySidecar).toContain(name);
    for (const name of Object.keys(envMap(sidecarOf(service(), cfg).env))) expect(readBySidecar).toContain(name);
  });

  test('a FunctionService without failure settings: the sidecar env it had before, plus FNMESH_QUEUE_LENGTH', () => {
    const env = sidecarOf(service()).env!;
    expect(env.map((e) => e.name)).toEqual([
      'FNMESH_NAMESPACE',
      'FNMESH_SERVICE',
      'FNMESH_FUNCTIONS',
      'FNMESH_NATS_URL',
      'FNMESH_NATS_CREDS',
      'FNMESH_FUNCTION_PORT',
      'FNMESH_HEALTH_PATH',
      'FNMESH_CONCURRENCY',
      'FNMESH_QUEUE_LENGTH',
      'FNMESH_TIMEOUT_MS',
      'FNMESH_OPS_LISTEN',
      'FNMESH_CALL_LISTEN',
      'FNMESH_DRAIN_TIMEOUT_MS',
      'FNMESH_REPLICA_ID',
    ]);
    expect(envMap(env)[SIDECAR_ENV.queueLength]).toBe(String(DEFAULT_QUEUE_LENGTH));
  });

  test('queueLength and outlierDetection reach the sidecar as the FunctionService says', () => {
    const outlierDetection = { consecutiveFailures: 3, baseEjectionMs: 1000 };
    const env = envMap(sidecarOf(service({ queueLength: 0, outlierDetection })).env);
    expect(env[SIDECAR_ENV.queueLength]).toBe('0');
    expect(JSON.parse(env[SIDECAR_ENV.outlierDetection]!)).toEqual(outlierDetection);
  });

  test('gateway-only settings (retry, idempotent, circuitBreaker) leave the Deployment as it is: no rollout', () => {
    const plain = desiredDeployment(service(), cfg);
    const withGatewaySettings = desiredDeployment(
      service({
        retry: { attempts: 2, backoff: { maxMs: 100 }, retryOn: ['reset'] },
        circuitBreaker: { consecutiveFailures: 1, openMs: 100, maxOpenMs: 200 },
        functions: [
          { name: 'create', idempotent: true, retry: { retryOn: ['5xx'] } },
          { name: 'default', rule: { rule: 'deny' } },
          { name: 'list_all' },
        ],
      }),
      cfg,
    );
    expect(withGatewaySettings).toEqual(plain);
  });

  test('with minted credentials, only the sidecar mounts its Secret read-only and reads it as FNMESH_NATS_CREDS', () => {
    const d = desiredDeployment(service(), cfg);
    const pod = d.spec!.template.spec!;
    const secretName = credsSecretName(replicaIdentity('shop', 'orders'));
    expect(pod.volumes).toEqual([credsVolume(secretName)]);
    expect(pod.volumes![0]!.secret).toMatchObject({ secretName });
    const sidecar = pod.initContainers!.find((c) => c.name === SIDECAR_CONTAINER_NAME)!;
    expect(sidecar.volumeMounts).toEqual([{ name: CREDS_VOLUME_NAME, mountPath: CREDS_MOUNT_DIR, readOnly: true }]);
    expect(envMap(sidecar.env)[SIDECAR_ENV.natsCreds]).toBe(CREDS_MOUNT_FILE);
    for (const c of pod.containers) expect(c.volumeMounts).toBeUndefined();
    // deterministic: the same input gives the same object
    expect(desiredDeployment(service(), cfg)).toEqual(d);
  });

  test('without minted credentials there is no volume and no FNMESH_NATS_CREDS', () => {
    const d = desiredDeployment(service(), { ...cfg, natsAuth: 'none' });
    const pod = d.spec!.template.spec!;
    expect(pod.volumes).toBeUndefined();
    const sidecar = pod.initContainers!.find((c) => c.name === SIDECAR_CONTAINER_NAME)!;
    expect(sidecar.volumeMounts).toBeUndefined();
    expect(envMap(sidecar.env)[SIDECAR_ENV.natsCreds]).toBeUndefined();
  });

  test.each([
    [
      'spec values',
      { healthPath: '/up', concurrency: 8, timeoutMs: 2500, port: 9000 },
      { healthPath: '/up', concurrency: 8, timeoutMs: 2500, functionPort: 9000 },
    ],
    ['no declared functions', { functions: [] }, { functions: [] }],
    ['only the default rule', { functions: [{ name: 'default', rule: { rule: 'allow' } }] }, { functions: [] }],
  ])('the sidecar env follows %s', (_name, spec, expected) => {
    expect(loadSidecarConfig(envMap(sidecarOf(service(spec)).env))).toMatchObject(expected);
  });

  test('the NATS token comes from the configured Secret key, never as a literal', () => {
    const c = sidecarOf(service(), { ...cfg, natsTokenSecret: { name: 'nats-auth', key: 'token' } });
    const token = c.env!.find((e) => e.name === 'FNMESH_NATS_TOKEN');
    expect(token).toEqual({
      name: 'FNMESH_NATS_TOKEN',
      valueFrom: { secretKeyRef: { name: 'nats-auth', key: 'token' } },
    });
    expect(loadSidecarConfig(envMap(c.env)).natsToken).toBe('secret-sample');
  });

  test('the replica id is the pod name', () => {
    expect(sidecarOf(service()).env!.find((e) => e.name === 'FNMESH_REPLICA_ID')).toEqual({
      name: 'FNMESH_REPLICA_ID',
      valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } },
    });
  });

  test('the sidecar: image, args, ports, probes, resources and a restrictive security context', () => {
    const c = sidecarOf(service());
    expect(c.image).toBe('ghcr.io/fnmesh/fnmesh:0.1.0');
    expect(c.args).toEqual(['sidecar']);
    expect(c.ports).toEqual([{ name: 'fnmesh-ops', containerPort: 9090, protocol: 'TCP' }]);
    expect(c.startupProbe!.httpGet).toEqual({ path: '/healthz', port: 'fnmesh-ops' });
    expect(c.readinessProbe!.httpGet).toEqual({ path: '/readyz', port: 'fnmesh-ops' });
    expect(c.livenessProbe!.httpGet).toEqual({ path: '/healthz', port: 'fnmesh-ops' });
    expect(c.resources).toEqual({ requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } });
    expect(c.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  test('the function container: the spec container, its port, the sidecar URL and a security default', () => {
    const c = functionOf(service());
    expect(c).toMatchObject({
      name: 'function',
      image: 'example/orders:1',
      command: ['node'],
      args: ['server.js'],
      resources: { limits: { memory: '256Mi' } },
    });
    expect(c.ports).toEqual([{ name: 'http', containerPort: 8000, protocol: 'TCP' }]);
    expect(envMap(c.env)).toEqual({ MODE: 'prod', PORT: '8000', FNMESH_SIDECAR_URL: 'http://127.0.0.1:3500' });
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
  });

  test('keeps env entries that read from elsewhere (valueFrom) as they are', () => {
    const env = [{ name: 'DB', valueFrom: { secretKeyRef: { name: 'db', key: 'url' } } }];
    expect(functionOf(service({ container: { image: 'x', env } })).env![0]).toEqual(env[0]);
  });

  test("the grace period covers the preStop drain plus the function's own stop", () => {
    for (const drainTimeoutMs of [0, 1, 30_000, 45_500]) {
      const pod = desiredDeployment(service(), { ...cfg, drainTimeoutMs }).spec!.template.spec!;
      // The preStop hook's time counts against the grace period: after a full drain the function keeps
      // GRACE_MARGIN_SECONDS to stop, and the sidecar closes after that.
      expect(pod.terminationGracePeriodSeconds! * 1000).toBeGreaterThanOrEqual(
        drainTimeoutMs + GRACE_MARGIN_SECONDS * 1000,
      );
      expect(pod.terminationGracePeriodSeconds).toBe(Math.ceil(drainTimeoutMs / 1000) + GRACE_MARGIN_SECONDS);
    }
    expect(GRACE_MARGIN_SECONDS).toBeGreaterThanOrEqual(10);
  });

  test('the function container drains the sidecar before it is signalled: preStop GET /drain on the ops port by number', () => {
    const c = functionOf(service());
    expect(c.lifecycle).toEqual({ preStop: { httpGet: { path: '/drain', port: 9090, scheme: 'HTTP' } } });
    // The kubelet resolves a named hook port against the function container's own ports, which do not
    // include the sidecar's: the hook must use the sidecar's number, the one the sidecar listens on.
    const sidecar = sidecarOf(service());
    expect(sidecar.ports!.find((p) => p.name === 'fnmesh-ops')!.containerPort).toBe(
      c.lifecycle!.preStop!.httpGet!.port,
    );
    expect(loadSidecarConfig(envMap(sidecar.env)).opsListen).toEqual({ host: '0.0.0.0', port: 9090 });
    expect(c.ports!.map((p) => p.name)).not.toContain('fnmesh-ops');
    // Only the function has the hook: the sidecar must not drain itself on its own (later) stop.
    expect(sidecar.lifecycle).toBeUndefined();
    expect(functionOf(service({ container: { image: 'x' } })).lifecycle).toEqual(c.lifecycle);
  });

  test('follows the configured sidecar ports', () => {
    const c = { ...cfg, opsPort: 9191, callPort: 3600 };
    const sc = loadSidecarConfig(envMap(sidecarOf(service(), c).env));
    expect(sc.opsListen.port).toBe(9191);
    expect(sc.callListen).toEqual({ host: '127.0.0.1', port: 3600 });
    expect(envMap(desiredDeployment(service(), c).spec!.template.spec!.containers[0]!.env).FNMESH_SIDECAR_URL).toBe(
      'http://127.0.0.1:3600',
    );
    expect(desiredDeployment(service(), c).spec!.template.spec!.containers[0]!.lifecycle!.preStop!.httpGet).toEqual({
      path: '/drain',
      port: 9191,
      scheme: 'HTTP',
    });
  });

  test.each([
    ['no container', { container: undefined }, 'spec.container'],
    [
      'a reserved PORT',
      { container: { image: 'x', env: [{ name: 'PORT', value: '1' }] } },
      'spec.container.env[0].name',
    ],
    [
      'a reserved FNMESH_SIDECAR_URL',
      {
        container: {
          image: 'x',
          env: [
            { name: 'A', value: '1' },
            { name: 'FNMESH_SIDECAR_URL', value: 'x' },
          ],
        },
      },
      'spec.container.env[1].name',
    ],
    [
      'a variable listed twice',
      {
        container: {
          image: 'x',
          env: [
            { name: 'A', value: '1' },
            { name: 'A', value: '2' },
          ],
        },
      },
      'spec.container.env[1].name',
    ],
    ['the port the sidecar serves ops on', { port: 9090 }, 'spec.port'],
    ['the port of the call API', { port: 3500 }, 'spec.port'],
  ])('refuses a spec with %s, naming the field', (_name, spec, field) => {
    let caught: unknown;
    try {
      desiredDeployment(service(spec), cfg);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InvalidSpecError);
    expect((caught as InvalidSpecError).field).toBe(field);
    expect((caught as InvalidSpecError).message).toContain(field);
  });

  test('sidecarContainer alone equals the injected one', () => {
    const fs = service();
    expect(sidecarContainer(fs, cfg)).toEqual(sidecarOf(fs));
  });
});

test('the Deployment shares no objects between its parts (editing one label map leaves the other)', () => {
  const d = desiredDeployment(service(), cfg);
  d.metadata!.labels!.extra = 'x';
  expect(d.spec!.template.metadata!.labels!.extra).toBeUndefined();
});
