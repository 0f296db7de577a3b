import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { V1Container, V1EnvVar, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { parseFunctionService } from '../common/manifest';
import { CREDS_MOUNT_FILE } from '../common/nats-identity';
import {
  loadOperatorConfig,
  type SidecarTemplateConfig,
  desiredDeployment,
  type ClusterFunctionService,
} from '../operator';
import { BUILT_IN_IMAGES, loadImages, type LocalImage } from './images';
import { natsImage } from './nats-image';
import {
  expandVars,
  isPlanError,
  planPod,
  referencedObjects,
  type ContainerError,
  type ContainerPlan,
  type PlanContext,
  type PodPlan,
} from './pod-plan';

const repoRoot = path.resolve(__dirname, '..');

const APP_ROOT = '/home/me/app';
const appImage: LocalImage = {
  repository: 'ghcr.io/me/app',
  root: APP_ROOT,
  dockerfile: `${APP_ROOT}/Dockerfile`,
  config: {
    workdir: '/app',
    env: { PATH: '/image/bin', FROM_IMAGE: 'image', SHARED: 'image' },
    entrypoint: ['node', '/app/server.js'],
    cmd: ['--port', '8080'],
  },
};
const bareImage: LocalImage = {
  repository: 'ghcr.io/me/bare',
  root: '/home/me/bare',
  dockerfile: '/home/me/bare/Dockerfile',
  config: { workdir: '/', env: {}, entrypoint: [], cmd: [] },
};

const POD_NAME = 'web-7d4b9c-abcde';

function context(over: Partial<PlanContext> = {}): PlanContext {
  return {
    images: new Map([
      [appImage.repository, appImage],
      [bareImage.repository, bareImage],
    ]),
    nodeName: 'node-1',
    podIP: '127.0.0.10',
    hostIP: '192.168.1.5',
    secrets: new Map([['db', { user: 'admin', password: 's3cret', raw: '$(FROM_IMAGE)' }]]),
    configMaps: new Map([['settings', { mode: 'fast', level: '3' }]]),
    baseEnv: { PATH: '/usr/bin', HOME: '/home/me', SHARED: 'base', HOSTNAME: 'my-laptop' },
    ...over,
  };
}

function podOf(spec: Partial<V1PodSpec>, metadata: V1Pod['metadata'] = {}): V1Pod {
  return {
    metadata: {
      name: POD_NAME,
      namespace: 'shop',
      uid: 'uid-42',
      labels: { app: 'web', tier: 'front' },
      annotations: { 'example.com/owner': 'team-a' },
      ...metadata,
    },
    spec: { containers: [], ...spec },
  };
}

function app(over: Partial<V1Container> = {}): V1Container {
  return { name: 'app', image: 'ghcr.io/me/app:1.0', ...over };
}

/** Plans a pod whose only container is `c`. */
function planOne(
  c: V1Container,
  ctx: PlanContext = context(),
  metadata?: V1Pod['metadata'],
): ContainerPlan | ContainerError {
  const plan = planPod(podOf({ containers: [c] }, metadata), ctx);
  expect(plan.containers).toHaveLength(1);
  return plan.containers[0]!;
}

function planOk(c: V1Container, ctx?: PlanContext, metadata?: V1Pod['metadata']): ContainerPlan {
  const p = planOne(c, ctx, metadata);
  if (isPlanError(p)) throw new Error(`expected a plan, got ${p.reason}: ${p.message}`);
  return p;
}

function planErr(c: V1Container, ctx?: PlanContext): ContainerError {
  const p = planOne(c, ctx);
  if (!isPlanError(p)) throw new Error(`expected an error, got a plan with argv ${JSON.stringify(p.argv)}`);
  return p;
}

function envOf(env: V1EnvVar[], over: Partial<V1Container> = {}, ctx?: PlanContext): Record<string, string> {
  return planOk(app({ env, ...over }), ctx).env;
}

describe('expandVars', () => {
  const vars = { A: 'x', PORT: '8080', 'my.var-1': 'dotted' };

  test('replaces $(VAR) wherever it appears', () => {
    expect(expandVars('$(A)', vars)).toBe('x');
    expect(expandVars('--port=$(PORT) -a $(A)$(A)', vars)).toBe('--port=8080 -a xx');
    expect(expandVars('$(my.var-1)', vars)).toBe('dotted');
  });

  test('$$ is a literal $, so $$(VAR) is not expanded', () => {
    expect(expandVars('$$(PORT)', vars)).toBe('$(PORT)');
    expect(expandVars('cost: $$5', vars)).toBe('cost: $5');
    expect(expandVars('$$$(PORT)', vars)).toBe('$8080');
  });

  test('an unknown reference stays as written', () => {
    expect(expandVars('$(NOPE) and $(A)', vars)).toBe('$(NOPE) and x');
  });

  test('text that is not a reference is unchanged', () => {
    for (const s of ['$A', '${A}', '$(A', '$()', '$', 'plain', '']) expect(expandVars(s, vars)).toBe(s);
  });

  test('only own properties are variables', () => {
    expect(expandVars('$(toString) $(constructor)', {})).toBe('$(toString) $(constructor)');
  });

  test('an empty value expands to nothing', () => {
    expect(expandVars('a$(E)b', { E: '' })).toBe('ab');
  });
});

describe('referencedObjects', () => {
  test('the Secrets and ConfigMaps read through env and envFrom of init and main containers, sorted, once each', () => {
    const pod = podOf({
      initContainers: [
        {
          name: 'init',
          env: [{ name: 'T', valueFrom: { secretKeyRef: { name: 'token', key: 't' } } }],
          envFrom: [{ configMapRef: { name: 'zeta' } }],
        },
      ],
      containers: [
        {
          name: 'a',
          env: [
            { name: 'P', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } },
            { name: 'M', valueFrom: { configMapKeyRef: { name: 'settings', key: 'mode' } } },
            { name: 'N', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'L', value: 'literal' },
          ],
        },
        {
          name: 'b',
          envFrom: [
            { secretRef: { name: 'db' } },
            { secretRef: { name: 'api' }, prefix: 'API_' },
            { configMapRef: { name: 'settings' } },
          ],
        },
      ],
    });
    expect(referencedObjects(pod)).toEqual({ secrets: ['api', 'db', 'token'], configMaps: ['settings', 'zeta'] });
  });

  test('a pod that reads none, or has no spec', () => {
    expect(referencedObjects(podOf({ containers: [app({ env: [{ name: 'A', value: '1' }] })] }))).toEqual({
      secrets: [],
      configMaps: [],
    });
    expect(referencedObjects({})).toEqual({ secrets: [], configMaps: [] });
  });
});

describe('planPod: pod-level settings', () => {
  test('an empty pod: no containers, restartPolicy Always, 30 s grace', () => {
    expect(planPod({}, context())).toEqual({
      containers: [],
      restartPolicy: 'Always',
      terminationGracePeriodMs: 30_000,
    });
  });

  test('restartPolicy and terminationGracePeriodSeconds are taken from the spec', () => {
    const plan = planPod(
      podOf({ containers: [app()], restartPolicy: 'OnFailure', terminationGracePeriodSeconds: 45 }),
      context(),
    );
    expect(plan.restartPolicy).toBe('OnFailure');
    expect(plan.terminationGracePeriodMs).toBe(45_000);
    expect(
      planPod(podOf({ containers: [app()], restartPolicy: 'Never', terminationGracePeriodSeconds: 0 }), context()),
    ).toMatchObject({
      restartPolicy: 'Never',
      terminationGracePeriodMs: 0,
    });
  });

  test('roles: init containers in order (restartPolicy Always makes a native sidecar), then the main containers', () => {
    const plan = planPod(
      podOf({
        initContainers: [
          app({ name: 'migrate' }),
          app({ name: 'proxy', restartPolicy: 'Always' }),
          app({ name: 'warm' }),
        ],
        containers: [app({ name: 'web' }), app({ name: 'worker' })],
      }),
      context(),
    );
    expect(plan.containers.map((c) => [c.name, c.role])).toEqual([
      ['migrate', 'init'],
      ['proxy', 'sidecar'],
      ['warm', 'init'],
      ['web', 'main'],
      ['worker', 'main'],
    ]);
    expect(plan.containers.every((c) => !isPlanError(c))).toBe(true);
  });

  test('one container that cannot start does not stop the others from being planned', () => {
    const plan = planPod(
      podOf({
        initContainers: [app({ name: 'bad-init', image: 'nope:1', restartPolicy: 'Always' })],
        containers: [app({ name: 'good' })],
      }),
      context(),
    );
    const [bad, good] = plan.containers;
    expect(bad).toMatchObject({ name: 'bad-init', role: 'sidecar', image: 'nope:1', reason: 'ErrImageNeverPull' });
    expect(isPlanError(bad!)).toBe(true);
    expect(isPlanError(good!)).toBe(false);
    expect(good).toMatchObject({ name: 'good', role: 'main', image: 'ghcr.io/me/app:1.0' });
  });
});

describe('planPod: argv and working folder', () => {
  test('the image ENTRYPOINT and CMD, with paths under WORKDIR mapped to the image folder', () => {
    const p = planOk(app());
    expect(p.argv).toEqual(['node', `${APP_ROOT}/server.js`, '--port', '8080']);
    expect(p.cwd).toBe(APP_ROOT);
    expect(p.image).toBe('ghcr.io/me/app:1.0');
  });

  test("args replace CMD, with $(VAR) expanded from the pod spec's env, $$ escaped, unknown references kept", () => {
    const p = planOk(
      app({
        env: [
          { name: 'PORT', value: '9000' },
          { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        ],
        args: ['--port', '$(PORT)', '--name=$(POD)', '$$(PORT)', '$(NOPE)', '$(FROM_IMAGE)'],
      }),
    );
    // The image's ENV is not the kubelet's to expand from: $(FROM_IMAGE) stays.
    expect(p.argv).toEqual([
      'node',
      `${APP_ROOT}/server.js`,
      '--port',
      '9000',
      `--name=${POD_NAME}`,
      '$(PORT)',
      '$(NOPE)',
      '$(FROM_IMAGE)',
    ]);
  });

  test('command replaces ENTRYPOINT and drops CMD; an expanded argument under WORKDIR is mapped too', () => {
    const p = planOk(
      app({ env: [{ name: 'DIR', value: '/app/tools' }], command: ['$(DIR)/run.sh', '/app', '/etc/app.conf'] }),
    );
    expect(p.argv).toEqual([`${APP_ROOT}/tools/run.sh`, APP_ROOT, '/etc/app.conf']);
  });

  test('command and args together', () => {
    expect(planOk(app({ command: ['python3'], args: ['/app/main.py', '-v'] })).argv).toEqual([
      'python3',
      `${APP_ROOT}/main.py`,
      '-v',
    ]);
  });

  test('an image without ENTRYPOINT or CMD needs a command', () => {
    const err = planErr({ name: 'bare', image: 'ghcr.io/me/bare:1' });
    expect(err).toEqual({
      name: 'bare',
      role: 'main',
      image: 'ghcr.io/me/bare:1',
      reason: 'CreateContainerConfigError',
      message: 'no command: image ghcr.io/me/bare:1 has no ENTRYPOINT or CMD and the container sets no command',
    });
    expect(planOk({ name: 'bare', image: 'ghcr.io/me/bare:1', command: ['sleep', '1'] })).toMatchObject({
      argv: ['sleep', '1'],
      cwd: '/home/me/bare',
    });
  });

  test('workingDir under WORKDIR maps to the image folder; another path is kept; none is the image folder', () => {
    expect(planOk(app({ workingDir: '/app/sub/dir' })).cwd).toBe(`${APP_ROOT}/sub/dir`);
    expect(planOk(app({ workingDir: '/app' })).cwd).toBe(APP_ROOT);
    expect(planOk(app({ workingDir: '/tmp/scratch' })).cwd).toBe('/tmp/scratch');
    expect(planOk(app()).cwd).toBe(APP_ROOT);
  });

  test('an image with no local folder: ErrImageNeverPull, naming the image, the known ones and --image', () => {
    const err = planErr(app({ image: 'docker.io/library/redis:7' }));
    expect(err).toMatchObject({
      name: 'app',
      role: 'main',
      image: 'docker.io/library/redis:7',
      reason: 'ErrImageNeverPull',
    });
    expect(err.message).toBe(
      'no local folder for image docker.io/library/redis:7 (fnmesh cluster runs images from folders: ghcr.io/me/app, ghcr.io/me/bare); start fnmesh cluster with --image docker.io/library/redis:7=FOLDER, FOLDER holding its Dockerfile',
    );
  });

  test('a container without an image: ErrImageNeverPull with a placeholder', () => {
    const err = planErr({ name: 'noimg' });
    expect(err).toMatchObject({ image: '', reason: 'ErrImageNeverPull' });
    expect(err.message).toContain('no local folder for image (none)');
    expect(err.message).toContain('--image IMAGE=FOLDER');
  });

  test('the image is found whatever its tag or digest', () => {
    expect(planOk(app({ image: 'ghcr.io/me/app@sha256:abcdef' })).argv[0]).toBe('node');
    expect(planOk(app({ image: 'ghcr.io/me/app' })).image).toBe('ghcr.io/me/app');
  });
});

describe('planPod: the official nats image (cluster/nats-image.ts)', () => {
  const nats = natsImage({ dir: '/cache/nats', version: '2.15.3', hostPath: '/usr/bin' });
  const ctx = (): PlanContext => context({ images: new Map([['nats', nats]]) });

  test("nats:2.15.3: the image's ENTRYPOINT and CMD, the binary and the config of its folder", () => {
    expect(planOk({ name: 'nats', image: 'nats:2.15.3' }, ctx())).toMatchObject({
      argv: ['/cache/nats/scratch/nats-server', '--config', 'nats-server.conf'],
      cwd: '/cache/nats/scratch',
    });
  });

  test("a path inside a volumeMount is the mount's, not the image's file", () => {
    const c: V1Container = {
      name: 'nats',
      image: 'nats:2.15.3-alpine',
      args: ['nats-server', '--config', '/etc/nats/nats-server.conf'],
      volumeMounts: [{ name: 'config', mountPath: '/etc/nats' }],
    };
    expect(planOk(c, ctx()).argv).toEqual([
      'docker-entrypoint.sh',
      'nats-server',
      '--config',
      '/etc/nats/nats-server.conf',
    ]);
    const unmounted = { ...c, volumeMounts: [{ name: 'config', mountPath: '/etc/nats-config' }] };
    expect(planOk(unmounted, ctx()).argv[3]).toBe('/cache/nats/alpine/etc/nats/nats-server.conf');
  });

  test('nats:2.10.0: ErrImageNeverPull naming the version it has and the fix', () => {
    const err = planErr({ name: 'nats', image: 'nats:2.10.0' }, ctx());
    expect(err.reason).toBe('ErrImageNeverPull');
    expect(err.message).toContain('image nats:2.10.0 is nats-server 2.10.0');
    expect(err.message).toContain('use nats:2.15.3');
  });
});

describe('planPod: environment', () => {
  test('baseEnv < image ENV < HOSTNAME, then envFrom, then env', () => {
    const env = envOf([{ name: 'SHARED', value: 'env' }], { envFrom: [{ configMapRef: { name: 'settings' } }] });
    expect(env).toEqual({
      PATH: '/image/bin', // the image's ENV over baseEnv
      HOME: '/home/me', // from baseEnv
      FROM_IMAGE: 'image',
      HOSTNAME: POD_NAME, // the pod name over baseEnv's
      mode: 'fast',
      level: '3',
      SHARED: 'env',
    });
  });

  test('each layer overrides the one below', () => {
    expect(envOf([]).SHARED).toBe('image');
    expect(
      envOf(
        [],
        { envFrom: [{ configMapRef: { name: 'shared' } }] },
        context({ configMaps: new Map([['shared', { SHARED: 'cm', PATH: '/cm/bin' }]]) }),
      ),
    ).toMatchObject({
      SHARED: 'cm',
      PATH: '/cm/bin',
    });
    expect(planOk({ name: 'b', image: 'ghcr.io/me/bare', command: ['x'] }).env.SHARED).toBe('base');
  });

  test('a later envFrom source overrides an earlier one; env overrides both', () => {
    const ctx = context({
      configMaps: new Map([['one', { K: '1', A: 'a' }]]),
      secrets: new Map([['two', { K: '2', B: 'b' }]]),
    });
    expect(
      envOf([], { envFrom: [{ configMapRef: { name: 'one' } }, { secretRef: { name: 'two' } }] }, ctx),
    ).toMatchObject({ K: '2', A: 'a', B: 'b' });
    expect(
      envOf(
        [{ name: 'K', value: '3' }],
        { envFrom: [{ configMapRef: { name: 'one' } }, { secretRef: { name: 'two' } }] },
        ctx,
      ).K,
    ).toBe('3');
  });

  test('HOSTNAME is the pod name; env may still set it', () => {
    expect(envOf([]).HOSTNAME).toBe(POD_NAME);
    expect(envOf([{ name: 'HOSTNAME', value: 'custom' }]).HOSTNAME).toBe('custom');
  });

  test('a later env entry wins over an earlier one with the same name', () => {
    expect(
      envOf([
        { name: 'X', value: '1' },
        { name: 'X', value: '2' },
      ]).X,
    ).toBe('2');
  });

  test('$(VAR) in a value expands from what the pod spec defines before it: not after, not the image ENV', () => {
    const env = envOf(
      [
        { name: 'A', value: 'x' },
        { name: 'B', value: '$(A)-$(C)-$(FROM_IMAGE)-$$(A)' },
        { name: 'C', value: 'c' },
      ],
      { envFrom: [{ configMapRef: { name: 'settings' } }] },
    );
    expect(env.B).toBe('x-$(C)-$(FROM_IMAGE)-$(A)');
    expect(envOf([{ name: 'M', value: 'mode=$(mode)' }], { envFrom: [{ configMapRef: { name: 'settings' } }] }).M).toBe(
      'mode=fast',
    );
  });

  test('values from Secrets and ConfigMaps are not expanded', () => {
    expect(envOf([{ name: 'RAW', valueFrom: { secretKeyRef: { name: 'db', key: 'raw' } } }]).RAW).toBe('$(FROM_IMAGE)');
  });

  test('an entry with neither value nor valueFrom is the empty string', () => {
    expect(envOf([{ name: 'EMPTY' }]).EMPTY).toBe('');
  });

  test('the context is not modified', () => {
    const ctx = context();
    const before = structuredClone({ baseEnv: ctx.baseEnv, imageEnv: appImage.config.env });
    envOf(
      [
        { name: 'SHARED', value: 'env' },
        { name: 'PATH', value: '/x' },
      ],
      {},
      ctx,
    );
    expect({ baseEnv: ctx.baseEnv, imageEnv: appImage.config.env }).toEqual(before);
  });
});

describe('planPod: fieldRef', () => {
  const field = (fieldPath: string, metadata?: V1Pod['metadata']): string | undefined =>
    planOk(app({ env: [{ name: 'F', valueFrom: { fieldRef: { fieldPath } } }] }), context(), metadata).env.F;

  test.each([
    ['metadata.name', POD_NAME],
    ['metadata.namespace', 'shop'],
    ['metadata.uid', 'uid-42'],
    ["metadata.labels['app']", 'web'],
    ["metadata.labels['tier']", 'front'],
    ["metadata.annotations['example.com/owner']", 'team-a'],
    ['spec.nodeName', 'node-1'],
    ['status.podIP', '127.0.0.10'],
    ['status.hostIP', '192.168.1.5'],
  ])('%s → %s', (fieldPath, value) => {
    expect(field(fieldPath)).toBe(value);
  });

  test('a label or annotation the pod does not have is the empty string', () => {
    expect(field("metadata.labels['missing']")).toBe('');
    expect(field("metadata.annotations['missing']")).toBe('');
    expect(field("metadata.labels['app']", { name: 'p', labels: undefined })).toBe('');
  });

  test('an unsupported fieldRef: CreateContainerConfigError naming it', () => {
    const err = planErr(
      app({ env: [{ name: 'F', valueFrom: { fieldRef: { fieldPath: 'spec.containers[0].image' } } }] }),
    );
    expect(err).toEqual({
      name: 'app',
      role: 'main',
      image: 'ghcr.io/me/app:1.0',
      reason: 'CreateContainerConfigError',
      message: 'fieldRef spec.containers[0].image is not one the kubelet supports',
    });
  });

  test('an unsupported env source (resourceFieldRef): CreateContainerConfigError naming the variable', () => {
    const err = planErr(app({ env: [{ name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } }] }));
    expect(err.reason).toBe('CreateContainerConfigError');
    expect(err.message).toBe(
      'env CPU: only value, fieldRef, secretKeyRef and configMapKeyRef are supported by fnmesh cluster',
    );
  });
});

describe('planPod: secretKeyRef and configMapKeyRef', () => {
  const secret = (name: string, key: string, optional?: boolean): V1EnvVar => ({
    name: 'S',
    valueFrom: { secretKeyRef: { name, key, ...(optional === undefined ? {} : { optional }) } },
  });
  const configMap = (name: string, key: string, optional?: boolean): V1EnvVar => ({
    name: 'C',
    valueFrom: { configMapKeyRef: { name, key, ...(optional === undefined ? {} : { optional }) } },
  });

  test('a present key gives its value', () => {
    expect(envOf([secret('db', 'password'), configMap('settings', 'mode')])).toMatchObject({ S: 's3cret', C: 'fast' });
  });

  test('a missing Secret or ConfigMap: CreateContainerConfigError, saying to create it or mark it optional', () => {
    expect(planErr(app({ env: [secret('nope', 'k')] }))).toMatchObject({
      reason: 'CreateContainerConfigError',
      message: `secret "nope" not found: create it in the pod's namespace or mark the reference optional`,
    });
    expect(planErr(app({ env: [configMap('nope', 'k')] }))).toMatchObject({
      reason: 'CreateContainerConfigError',
      message: `configmap "nope" not found: create it in the pod's namespace or mark the reference optional`,
    });
  });

  test('a missing key: CreateContainerConfigError naming the key and the object', () => {
    expect(planErr(app({ env: [secret('db', 'token')] })).message).toBe(
      "couldn't find key token in Secret db: add the key or mark the reference optional",
    );
    expect(planErr(app({ env: [configMap('settings', 'speed')] })).message).toBe(
      "couldn't find key speed in ConfigMap settings: add the key or mark the reference optional",
    );
  });

  test('optional: a missing object or key leaves the variable unset (an earlier value stays)', () => {
    const env = envOf([
      { name: 'S', value: 'before' },
      secret('nope', 'k', true),
      configMap('settings', 'speed', true),
    ]);
    expect(env.S).toBe('before');
    expect('C' in env).toBe(false);
    expect(envOf([secret('db', 'password', true)]).S).toBe('s3cret');
    expect(planErr(app({ env: [secret('nope', 'k', false)] })).reason).toBe('CreateContainerConfigError');
  });

  test('an empty value is a value', () => {
    expect(envOf([secret('e', 'k')], {}, context({ secrets: new Map([['e', { k: '' }]]) })).S).toBe('');
  });

  test('a missing key named like an Object.prototype member (constructor) is reported as missing', () => {
    const p = planOne(app({ env: [secret('db', 'constructor')] }));
    expect(p).toMatchObject({
      reason: 'CreateContainerConfigError',
      message: "couldn't find key constructor in Secret db: add the key or mark the reference optional",
    });
  });
});

describe('planPod: envFrom', () => {
  test('all keys of a ConfigMap or Secret, with the prefix', () => {
    const env = envOf([], {
      envFrom: [
        { configMapRef: { name: 'settings' }, prefix: 'CFG_' },
        { secretRef: { name: 'db' }, prefix: 'DB_' },
      ],
    });
    expect(env).toMatchObject({ CFG_mode: 'fast', CFG_level: '3', DB_user: 'admin', DB_password: 's3cret' });
    expect('mode' in env).toBe(false);
  });

  test('a missing source: CreateContainerConfigError, saying to mark envFrom optional', () => {
    expect(planErr(app({ envFrom: [{ secretRef: { name: 'gone' } }] }))).toMatchObject({
      reason: 'CreateContainerConfigError',
      message: `secret "gone" not found: create it in the pod's namespace or mark envFrom optional`,
    });
    expect(planErr(app({ envFrom: [{ configMapRef: { name: 'gone', optional: false } }] })).message).toBe(
      `configmap "gone" not found: create it in the pod's namespace or mark envFrom optional`,
    );
  });

  test('an optional missing source is skipped', () => {
    const env = envOf([], {
      envFrom: [{ secretRef: { name: 'gone', optional: true } }, { configMapRef: { name: 'settings' } }],
    });
    expect(env.mode).toBe('fast');
  });

  test('a Secret is looked up among Secrets and a ConfigMap among ConfigMaps', () => {
    // "settings" is a ConfigMap only; "db" a Secret only.
    expect(planErr(app({ envFrom: [{ secretRef: { name: 'settings' } }] })).message).toContain(
      'secret "settings" not found',
    );
    expect(planErr(app({ envFrom: [{ configMapRef: { name: 'db' } }] })).message).toContain('configmap "db" not found');
  });
});

describe('planPod: probes and preStop', () => {
  const withPorts = (over: Partial<V1Container>): V1Container =>
    app({
      ports: [
        { name: 'http', containerPort: 8080 },
        { name: 'admin', containerPort: 9901 },
      ],
      ...over,
    });

  test('httpGet on a named port of the container, with the Kubernetes defaults', () => {
    const p = planOk(withPorts({ readinessProbe: { httpGet: { path: '/ready', port: 'http' } } }));
    expect(p.readinessProbe).toEqual({
      action: { kind: 'http', port: 8080, path: '/ready' },
      initialDelayMs: 0,
      periodMs: 10_000,
      timeoutMs: 1_000,
      failureThreshold: 3,
      successThreshold: 1,
    });
    expect(p.startupProbe).toBeUndefined();
    expect(p.livenessProbe).toBeUndefined();
    expect(p.preStop).toBeUndefined();
  });

  test('a numeric port, a string numeric port, no path, and every timing given', () => {
    const p = planOk(
      withPorts({
        livenessProbe: {
          httpGet: { port: 9000 },
          initialDelaySeconds: 5,
          periodSeconds: 2,
          timeoutSeconds: 3,
          failureThreshold: 4,
          successThreshold: 2,
        },
        startupProbe: { httpGet: { path: '/healthz', port: '8081', host: 'localhost' } },
      }),
    );
    expect(p.livenessProbe).toEqual({
      action: { kind: 'http', port: 9000, path: '/' },
      initialDelayMs: 5000,
      periodMs: 2000,
      timeoutMs: 3000,
      failureThreshold: 4,
      successThreshold: 2,
    });
    expect(p.startupProbe?.action).toEqual({ kind: 'http', port: 8081, path: '/healthz' });
  });

  test('tcpSocket with a named or numeric port', () => {
    expect(planOk(withPorts({ livenessProbe: { tcpSocket: { port: 'admin' } } })).livenessProbe?.action).toEqual({
      kind: 'tcp',
      port: 9901,
    });
    expect(planOk(withPorts({ livenessProbe: { tcpSocket: { port: 5432 } } })).livenessProbe?.action).toEqual({
      kind: 'tcp',
      port: 5432,
    });
  });

  test('exec, with $(VAR) expanded from the container env (not mapped)', () => {
    const p = planOk(
      withPorts({
        env: [{ name: 'PORT', value: '8080' }],
        startupProbe: { exec: { command: ['/app/check', '--port=$(PORT)', '$(NOPE)'] } },
      }),
    );
    expect(p.startupProbe?.action).toEqual({ kind: 'exec', argv: ['/app/check', '--port=8080', '$(NOPE)'] });
  });

  test('an unknown named port: CreateContainerConfigError naming the probe, the port and the container', () => {
    expect(planErr(withPorts({ readinessProbe: { httpGet: { port: 'metrics' } } }))).toMatchObject({
      reason: 'CreateContainerConfigError',
      message: `container app readinessProbe: port "metrics" is not a number nor the name of one of container app's ports`,
    });
  });

  test("a named port is resolved against the container's own ports, not another container's", () => {
    const plan = planPod(
      podOf({
        initContainers: [app({ name: 'side', restartPolicy: 'Always', ports: [{ name: 'ops', containerPort: 9090 }] })],
        containers: [app({ name: 'main', livenessProbe: { httpGet: { port: 'ops' } } })],
      }),
      context(),
    );
    expect(isPlanError(plan.containers[0]!)).toBe(false);
    expect(plan.containers[1]).toMatchObject({ name: 'main', reason: 'CreateContainerConfigError' });
    expect((plan.containers[1] as ContainerError).message).toContain('container main livenessProbe: port "ops"');
  });

  test('httpGet on another host is refused; a probe with no action is refused', () => {
    expect(planErr(withPorts({ livenessProbe: { httpGet: { host: '10.0.0.1', port: 80 } } })).message).toBe(
      'container app livenessProbe: httpGet host 10.0.0.1 is not supported (fnmesh cluster probes the pod itself)',
    );
    expect(
      planOk(withPorts({ livenessProbe: { httpGet: { host: '127.0.0.1', port: 80 } } })).livenessProbe?.action,
    ).toEqual({ kind: 'http', port: 80, path: '/' });
    expect(planErr(withPorts({ livenessProbe: { periodSeconds: 5 } })).message).toBe(
      'container app livenessProbe: needs httpGet, tcpSocket or exec',
    );
    expect(planErr(withPorts({ startupProbe: { exec: { command: [] } } })).message).toBe(
      'container app startupProbe: needs httpGet, tcpSocket or exec',
    );
  });

  test('securityContext.readOnlyRootFilesystem is carried to the container (its mount script makes the rest read-only)', () => {
    expect(planOk(app({ securityContext: { readOnlyRootFilesystem: true } })).readOnlyRootFilesystem).toBe(true);
    expect(planOk(app({ securityContext: { readOnlyRootFilesystem: false } })).readOnlyRootFilesystem).toBeUndefined();
    expect(planOk(app()).readOnlyRootFilesystem).toBeUndefined();
  });

  test('preStop httpGet with a numeric port; preStop exec', () => {
    expect(
      planOk(app({ lifecycle: { preStop: { httpGet: { path: '/drain', port: 9090, scheme: 'HTTP' } } } })).preStop,
    ).toEqual({
      kind: 'http',
      port: 9090,
      path: '/drain',
    });
    expect(
      planOk(
        app({ env: [{ name: 'S', value: '5' }], lifecycle: { preStop: { exec: { command: ['sleep', '$(S)'] } } } }),
      ).preStop,
    ).toEqual({ kind: 'exec', argv: ['sleep', '5'] });
  });

  test('a preStop on an unknown named port: CreateContainerConfigError naming preStop', () => {
    expect(planErr(app({ lifecycle: { preStop: { httpGet: { port: 'ops' } } } })).message).toBe(
      `container app preStop: port "ops" is not a number nor the name of one of container app's ports`,
    );
  });
});

describe("planPod: the operator's Deployment for examples/greeter.yaml", () => {
  const podName = 'greeter-6f7d9c8b5-x2x7q';
  let cfg: SidecarTemplateConfig;
  let plan: PodPlan;
  let pod: V1Pod;
  let ctx: PlanContext;

  function greeterPod(sidecar: SidecarTemplateConfig): V1Pod {
    const fs = parseFunctionService(
      parse(readFileSync(path.join(repoRoot, 'examples', 'greeter.yaml'), 'utf8')),
      'examples/greeter.yaml',
    );
    const cfs: ClusterFunctionService = { ...fs, metadata: { ...fs.metadata, uid: 'fs-uid' } };
    const template = desiredDeployment(cfs, sidecar).spec!.template;
    return {
      metadata: { name: podName, namespace: 'default', uid: 'pod-uid', labels: template.metadata?.labels },
      spec: template.spec,
    };
  }

  beforeAll(() => {
    cfg = loadOperatorConfig({
      FNMESH_SIDECAR_IMAGE: 'ghcr.io/fnmesh/fnmesh:0.1.0',
      FNMESH_SIDECAR_NATS_URL: 'nats://nats.fnmesh-system:4222',
      // as fnmesh cluster runs it: minted credentials in a Secret volume (cluster/volume-plan.test.ts mounts it)
      FNMESH_NATS_AUTH: 'jwt',
    }).sidecar;
    pod = greeterPod(cfg);
    ctx = context({ images: loadImages(repoRoot, BUILT_IN_IMAGES), secrets: new Map(), configMaps: new Map() });
    plan = planPod(pod, ctx);
  });

  const byName = (name: string): ContainerPlan => {
    const c = plan.containers.find((x) => x.name === name);
    if (!c || isPlanError(c)) throw new Error(`${name}: ${c ? `${c.reason}: ${c.message}` : 'not planned'}`);
    return c;
  };

  test('the native sidecar first, then the function; nothing fails to plan', () => {
    expect(plan.containers.map((c) => [c.name, c.role, isPlanError(c)])).toEqual([
      ['fnmesh-sidecar', 'sidecar', false],
      ['function', 'main', false],
    ]);
    expect(plan.restartPolicy).toBe('Always');
    // The sidecar's 30 s drain timeout plus the operator's margin.
    expect(plan.terminationGracePeriodMs).toBe(40_000);
  });

  test("the sidecar runs this checkout's CLI as `fnmesh sidecar`, with its env", () => {
    const s = byName('fnmesh-sidecar');
    expect(s.image).toBe('ghcr.io/fnmesh/fnmesh:0.1.0');
    expect(s.argv).toEqual(['node', path.join(repoRoot, 'bin', 'fnmesh.js'), 'sidecar']);
    expect(s.cwd).toBe(repoRoot);
    expect(s.env).toMatchObject({
      NODE_ENV: 'production',
      HOSTNAME: podName,
      FNMESH_REPLICA_ID: podName,
      FNMESH_NAMESPACE: 'default',
      FNMESH_SERVICE: 'greeter',
      FNMESH_FUNCTIONS: 'hello,whoami,shout,admin,welcome',
      FNMESH_NATS_URL: 'nats://nats.fnmesh-system:4222',
      FNMESH_FUNCTION_PORT: '8080',
      FNMESH_OPS_LISTEN: '0.0.0.0:9090',
      FNMESH_CALL_LISTEN: '127.0.0.1:3500',
      // the minted user's .creds, from the Secret volume mounted into the sidecar only
      FNMESH_NATS_CREDS: CREDS_MOUNT_FILE,
    });
    expect('FNMESH_NATS_TOKEN' in s.env).toBe(false);
    expect('FNMESH_NATS_CREDS' in byName('function').env).toBe(false);
  });

  test('the sidecar probes resolve the named ops port to 9090', () => {
    const s = byName('fnmesh-sidecar');
    expect(s.startupProbe).toEqual({
      action: { kind: 'http', port: 9090, path: '/healthz' },
      initialDelayMs: 0,
      periodMs: 1000,
      timeoutMs: 1000,
      failureThreshold: 60,
      successThreshold: 1,
    });
    expect(s.readinessProbe).toEqual({
      action: { kind: 'http', port: 9090, path: '/readyz' },
      initialDelayMs: 0,
      periodMs: 2000,
      timeoutMs: 1000,
      failureThreshold: 2,
      successThreshold: 1,
    });
    expect(s.livenessProbe).toEqual({
      action: { kind: 'http', port: 9090, path: '/healthz' },
      initialDelayMs: 0,
      periodMs: 10_000,
      timeoutMs: 1000,
      failureThreshold: 3,
      successThreshold: 1,
    });
    expect(s.preStop).toBeUndefined();
  });

  test('the function runs the built greeter from the checkout root, drained through the sidecar before it stops', () => {
    const f = byName('function');
    expect(f.image).toBe('ghcr.io/fnmesh/examples-greeter:0.1.0');
    expect(f.argv).toEqual(['node', 'dist/examples/greeter/index.js']);
    expect(f.cwd).toBe(repoRoot);
    expect(f.env).toMatchObject({
      NODE_ENV: 'production',
      PORT: '8080',
      FNMESH_SIDECAR_URL: 'http://127.0.0.1:3500',
      HOSTNAME: podName,
    });
    expect(f.preStop).toEqual({ kind: 'http', port: 9090, path: '/drain' });
    expect(f.startupProbe).toBeUndefined();
    expect(f.readinessProbe).toBeUndefined();
    expect(f.livenessProbe).toBeUndefined();
  });

  test('the pod reads no Secret or ConfigMap', () => {
    expect(referencedObjects(pod)).toEqual({ secrets: [], configMaps: [] });
  });

  test('with a NATS token Secret: referenced, required, and read into the sidecar env', () => {
    const withToken = loadOperatorConfig({
      FNMESH_SIDECAR_IMAGE: 'ghcr.io/fnmesh/fnmesh:0.1.0',
      FNMESH_SIDECAR_NATS_URL: 'nats://nats.fnmesh-system:4222',
      FNMESH_SIDECAR_NATS_TOKEN_SECRET: 'nats-auth/token',
      FNMESH_NATS_AUTH: 'none',
    }).sidecar;
    const tokenPod = greeterPod(withToken);
    expect(referencedObjects(tokenPod)).toEqual({ secrets: ['nats-auth'], configMaps: [] });

    const missing = planPod(tokenPod, ctx).containers[0]!;
    expect(missing).toMatchObject({ name: 'fnmesh-sidecar', role: 'sidecar', reason: 'CreateContainerConfigError' });
    expect((missing as ContainerError).message).toContain('secret "nats-auth" not found');

    const present = planPod(tokenPod, { ...ctx, secrets: new Map([['nats-auth', { token: 't0ken' }]]) }).containers[0]!;
    expect(isPlanError(present)).toBe(false);
    expect((present as ContainerPlan).env.FNMESH_NATS_TOKEN).toBe('t0ken');
  });
});
