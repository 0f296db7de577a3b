/**
 * charts/fnmesh with a real helm (scripts/helm-tool.sh): lint clean for the default values and each ci/ file,
 * bad values refused naming the key (the schema, or a `fail` with the fix), and the rendered manifests of each
 * NATS mode checked against the parts they run: env names that are real settings of that part (from the
 * settings tables), the wiring between them (Secrets the operator writes and the pods mount, Services and
 * URLs), the RBAC of common/rbac.ts, and every pod's security context. test/chart-dry-run.test.ts has the API
 * server take the rendered manifests.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { GATEWAY_SETTINGS } from '../gateway/settings';
import { OPERATOR_SETTINGS } from '../operator/settings';
import { ACCOUNT_SECRET_KEYS, FIELD_MANAGER, MANAGED_BY_LABEL, SERVICE_LABEL } from '../operator';
import { CREDS_SECRET_KEY } from '../common/nats-identity';
import { NATS_SERVER_VERSION } from '../common/nats-server-version';
import { PARTS_RBAC } from '../common/rbac';
import { CHART_DIR, CI_VALUES, REPO, helm, renderChart, type K8sObject } from './helpers/helm';

jest.setTimeout(60_000);

const chartYaml = parseYaml(readFileSync(path.join(CHART_DIR, 'Chart.yaml'), 'utf8')) as Record<string, unknown>;
const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
const values = parseYaml(readFileSync(path.join(CHART_DIR, 'values.yaml'), 'utf8')) as {
  nats: { bundled: { image: { tag: string } } };
};

const envNames = (table: Record<string, { env: string }>): Set<string> =>
  new Set(Object.values(table).map((s) => s.env));
const GATEWAY_ENV = envNames(GATEWAY_SETTINGS);
// the operator also reads its pod's name (the Lease holder) and namespace from the downward API (operator/config.ts, main.ts)
const OPERATOR_ENV = new Set([...envNames(OPERATOR_SETTINGS), 'POD_NAME', 'POD_NAMESPACE']);

describe('JetStream in the bundled NATS', () => {
  const maxFileStore = async (set: string[]): Promise<string | undefined> => {
    const { objects } = await renderChart({ set });
    const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'fnmesh-nats-config');
    return /max_file_store: (\d+)/.exec((cm!.data as Record<string, string>)['nats.conf']!)?.[1];
  };
  // nats-server reads "10G" as 10 GiB, Kubernetes as 10^9 bytes: the chart gives it bytes, 90% of the claim
  test.each([
    ['500Mi', 0.9 * 500 * 2 ** 20],
    ['3Gi', 0.9 * 3 * 2 ** 30],
    ['2Ti', 0.9 * 2 * 2 ** 40],
    ['700M', 0.9 * 700e6],
    ['10G', 0.9 * 10e9],
    ['1T', 0.9 * 1e12],
  ])('storageSize %s: max_file_store is 90%% of it in bytes', async (size, bytes) => {
    expect(await maxFileStore([`nats.bundled.jetstream.storageSize=${size}`])).toBe(String(Math.floor(bytes)));
  });
  test.each(['jwt', 'none'])('auth=%s: on by default, off with jetstream.enabled=false', async (auth) => {
    expect(await maxFileStore([`nats.auth=${auth}`])).toBeDefined();
    expect(await maxFileStore([`nats.auth=${auth}`, 'nats.bundled.jetstream.enabled=false'])).toBeUndefined();
  });
});

describe('Chart.yaml', () => {
  test('is apiVersion v2, version 0.1.0, appVersion = package.json version; the NATS tag is NATS_SERVER_VERSION', () => {
    expect(chartYaml).toMatchObject({ apiVersion: 'v2', name: 'fnmesh', version: '0.1.0', appVersion: pkg.version });
    expect(values.nats.bundled.image.tag).toBe(NATS_SERVER_VERSION);
  });
});

describe('helm lint', () => {
  const lintCases: [string, string | undefined][] = [
    ['the default values', undefined],
    ...CI_VALUES.map((f): [string, string] => [path.basename(f), f]),
  ];
  test.each(lintCases)('is clean with %s', async (_, file) => {
    const r = await helm(['lint', '--strict', CHART_DIR, ...(file ? ['-f', file] : [])]);
    expect(r.stderr + r.stdout).not.toMatch(/\[(ERROR|WARNING)\]/);
    expect(r.code).toBe(0);
  });
});

describe('bad values are refused, naming the key', () => {
  // [what, helm args, what the message must say]
  const cases: [string, string[], string[]][] = [
    ['an unknown top-level key', ['--set', 'replicas=2'], ["at ''", "additional properties 'replicas'"]],
    ['a typo in gateway', ['--set', 'gateway.replicaz=2'], ["at '/gateway'", "'replicaz' not allowed"]],
    ['a typo three levels down', ['--set', 'nats.bundled.image.tagg=x'], ["at '/nats/bundled/image'", "'tagg'"]],
    [
      'an unknown sidecar resource',
      ['--set', 'sidecar.resources.requests.gpu=1'],
      ["at '/sidecar/resources/requests'", "'gpu'"],
    ],
    [
      'an unknown toleration field',
      ['--set', 'gateway.tolerations[0].kee=x'],
      ["at '/gateway/tolerations/0'", "'kee'"],
    ],
    ['a string for a number', ['--set-string', 'gateway.replicas=two'], ["at '/gateway/replicas'", 'integer']],
    ['a string for a boolean', ['--set-string', 'networkPolicy.enabled=yes'], ["at '/networkPolicy/enabled'"]],
    ['a list for a string', ['--set', 'image.repository={a,b}'], ["at '/image/repository'", 'string']],
    ['a bad NATS mode', ['--set', 'nats.mode=cluster'], ["at '/nats/mode'", "'bundled'"]],
    ['a bad log level', ['--set', 'logLevel=verbose'], ["at '/logLevel'"]],
    ['a bad pull policy', ['--set', 'image.pullPolicy=Sometimes'], ["at '/image/pullPolicy'"]],
    ['a bad sidecar pull policy', ['--set', 'sidecar.image.pullPolicy=Sometimes'], ["at '/sidecar/image/pullPolicy'"]],
    ['a digest without sha256:', ['--set', 'image.digest=abc'], ["at '/image/digest'"]],
    ['a Service type', ['--set', 'gateway.service.type=External'], ["at '/gateway/service/type'"]],
    [
      'two gateways with the embedded broker',
      ['--set', 'nats.mode=embedded', '--set', 'gateway.replicas=2'],
      ["at '/gateway/replicas'", 'gateway.replicas must be 1 with nats.mode=embedded: the embedded broker runs inside'],
    ],
    [
      'autoscaling with the embedded broker (a fail in the templates)',
      ['--set', 'nats.mode=embedded', '--set', 'gateway.replicas=1', '--set', 'gateway.autoscaling.enabled=true'],
      ['gateway.autoscaling.enabled must be false with nats.mode=embedded'],
    ],
    [
      'autoscaling without a CPU request',
      ['--set', 'gateway.autoscaling.enabled=true'],
      ['gateway.resources.requests.cpu is not set: gateway.autoscaling.enabled scales on CPU utilization'],
    ],
    ['external NATS without URLs', ['--set', 'nats.mode=external'], ['nats.external.urls is empty']],
    ['token auth without its Secret', ['--set', 'nats.auth=token'], ['nats.token.secretName is empty']],
    [
      'a JetStream claim of size 0 (a fail in the templates)',
      ['--set', 'nats.bundled.jetstream.storageSize=0Gi'],
      ['nats.bundled.jetstream.storageSize is "0Gi": JetStream would have no file storage'],
    ],
    [
      'a JetStream claim size that is no Kubernetes quantity',
      ['--set', 'nats.bundled.jetstream.storageSize=10GB'],
      ["at '/nats/bundled/jetstream/storageSize'"],
    ],
    [
      'a NATS URL of another scheme',
      ['--set', 'nats.mode=external', '--set', 'nats.external.urls[0]=http://x'],
      ["at '/nats/external/urls/0'"],
    ],
  ];
  test.each(cases)('%s', async (_, args, says) => {
    const r = await helm(['template', 'fnmesh', CHART_DIR, ...args]);
    expect(r.code).not.toBe(0);
    for (const s of says) expect(r.stderr).toContain(s);
  });
});

type Container = {
  name: string;
  image: string;
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string }[];
  ports?: { name: string; containerPort: number }[];
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
};
type PodSpec = {
  securityContext?: Record<string, unknown>;
  containers: Container[];
  initContainers?: Container[];
  volumes?: {
    name: string;
    secret?: { secretName: string; items?: { key: string }[] };
    configMap?: { name: string };
  }[];
  terminationGracePeriodSeconds?: number;
};

function podSpecs(objects: K8sObject[]): [string, PodSpec][] {
  return objects.flatMap((o): [string, PodSpec][] => {
    if (o.kind === 'Pod') return [[`Pod/${o.metadata.name}`, o.spec as PodSpec]];
    if (['Deployment', 'StatefulSet'].includes(o.kind)) return [[`${o.kind}/${o.metadata.name}`, o.spec.template.spec]];
    return [];
  });
}
const find = (objects: K8sObject[], kind: string, name: string): K8sObject => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind}/${name} in the rendered chart`);
  return o;
};
const container = (objects: K8sObject[], deployment: string): Container =>
  (find(objects, 'Deployment', deployment).spec.template.spec as PodSpec).containers[0]!;
const env = (c: Container, name: string): string | undefined => c.env?.find((e) => e.name === name)?.value;

/** The Secret mounted where `file` lives in this pod (the file's folder is a volumeMount of a secret volume). */
function secretHolding(spec: PodSpec, c: Container, file: string): { secret: string; key: string } {
  const mount = c.volumeMounts?.find((m) => path.dirname(file) === m.mountPath);
  const volume = spec.volumes?.find((v) => v.name === mount?.name);
  if (!volume?.secret) throw new Error(`${file} is in no mounted Secret of ${c.name}`);
  const key = path.basename(file);
  expect(volume.secret.items?.map((i) => i.key) ?? [key]).toContain(key);
  return { secret: volume.secret.secretName, key };
}

const MODES: [string, string[]][] = [
  ['the default values', []],
  ...CI_VALUES.map((f): [string, string[]] => [path.basename(f), [f]]),
];

describe.each(MODES)('rendered with %s', (label, valuesFiles) => {
  let objects: K8sObject[];
  const mode = label.startsWith('external') ? 'external' : label.startsWith('embedded') ? 'embedded' : 'bundled';
  beforeAll(async () => {
    objects = (await renderChart({ valuesFiles })).objects;
  });

  test('every pod: non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp, no escalation', () => {
    const specs = podSpecs(objects);
    expect(specs.map(([n]) => n.split('/')[0])).toEqual(expect.arrayContaining(['Deployment', 'Pod']));
    for (const [name, spec] of specs) {
      expect([name, spec.securityContext]).toEqual([
        name,
        expect.objectContaining({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } }),
      ]);
      for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
        expect([name, c.name, c.securityContext]).toEqual([
          name,
          c.name,
          {
            runAsNonRoot: true,
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          },
        ]);
      }
    }
  });

  test("the gateway's and the operator's env names are their own settings", () => {
    const gateway = container(objects, 'fnmesh-gateway');
    const operator = container(objects, 'fnmesh-operator');
    expect(gateway.env!.map((e) => e.name).filter((n) => !GATEWAY_ENV.has(n))).toEqual([]);
    expect(operator.env!.map((e) => e.name).filter((n) => !OPERATOR_ENV.has(n))).toEqual([]);
    expect(env(gateway, GATEWAY_SETTINGS.ruleSource.env)).toBe('kubernetes');
    expect(env(operator, OPERATOR_SETTINGS.leaderElect.env)).toBe('true');
  });

  test('the operator runs 2 replicas, the sidecar image is the fnmesh image at appVersion', () => {
    const operator = find(objects, 'Deployment', 'fnmesh-operator');
    expect(operator.spec.replicas).toBe(2);
    const c = container(objects, 'fnmesh-operator');
    expect(c.image).toBe(`ghcr.io/fnmesh/fnmesh:${pkg.version}`);
    expect(env(c, OPERATOR_SETTINGS.sidecarImage.env)).toBe(`ghcr.io/fnmesh/fnmesh:${pkg.version}`);
    // the Lease lives in the release namespace (POD_NAMESPACE), where the Role allows it
    expect(c.env!.find((e) => e.name === 'POD_NAMESPACE')?.valueFrom).toEqual({
      fieldRef: { fieldPath: 'metadata.namespace' },
    });
    expect(find(objects, 'Role', 'fnmesh-operator-leader-election').metadata.namespace).toBe('fnmesh');
  });

  test('the gateway: its ClusterIP Service, a rollout that loses no calls, probes on its ops port', () => {
    const svc = find(objects, 'Service', 'fnmesh-gateway');
    expect(svc.metadata.namespace).toBe('fnmesh');
    expect(svc.spec).toMatchObject({ type: 'ClusterIP', ports: [{ port: 80, targetPort: 'http' }] });
    const dep = find(objects, 'Deployment', 'fnmesh-gateway');
    const spec = dep.spec.template.spec as PodSpec & { containers: (Container & Record<string, unknown>)[] };
    const c = spec.containers[0]!;
    expect(c.ports).toEqual(expect.arrayContaining([{ name: 'ops', containerPort: 9091 }]));
    expect(env(c, GATEWAY_SETTINGS.opsListen.env)).toBe('0.0.0.0:9091');
    expect(c.readinessProbe).toMatchObject({ httpGet: { path: '/readyz', port: 'ops' } });
    expect(c.livenessProbe).toMatchObject({ httpGet: { path: '/healthz', port: 'ops' } });
    if (mode === 'embedded') {
      expect(dep.spec.strategy).toEqual({ type: 'Recreate' });
      return;
    }
    expect(dep.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
    const sleep = Number(c.lifecycle!.preStop!.exec!.command[1]);
    const drain = Number(env(c, GATEWAY_SETTINGS.shutdownTimeoutMs.env)) / 1000;
    expect(sleep).toBeGreaterThan(0);
    expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(sleep + drain);
    expect(find(objects, 'PodDisruptionBudget', 'fnmesh-gateway').spec.minAvailable).toBe(1);
    // every replica signs delegation tokens with the same key
    const key = env(c, GATEWAY_SETTINGS.delegationKeyFile.env)!;
    expect(secretHolding(spec, c, key).secret).toBe('fnmesh-gateway-delegation');
  });

  test('NATS is wired: the URL the sidecars get, the credentials the gateway mounts, the Secrets the operator writes', () => {
    const op = container(objects, 'fnmesh-operator');
    const gwDep = find(objects, 'Deployment', 'fnmesh-gateway');
    const gw = container(objects, 'fnmesh-gateway');
    const sidecarUrl = env(op, OPERATOR_SETTINGS.sidecarNatsUrl.env)!;
    if (mode === 'external') {
      expect(sidecarUrl).toBe('tls://nats-0.nats.example.svc:4222,tls://nats-1.nats.example.svc:4222');
      expect(env(gw, GATEWAY_SETTINGS.natsUrl.env)).toBe(sidecarUrl);
      expect(secretHolding(gwDep.spec.template.spec, gw, env(gw, GATEWAY_SETTINGS.natsTlsCa.env)!).secret).toBe(
        'nats-ca',
      );
      // the operator gets the same CA for the sidecars it injects (it copies the file beside each FunctionService)
      const opSpec = find(objects, 'Deployment', 'fnmesh-operator').spec.template.spec as PodSpec;
      expect(secretHolding(opSpec, op, env(op, OPERATOR_SETTINGS.sidecarNatsTlsCaFile.env)!)).toEqual({
        secret: 'nats-ca',
        key: 'ca.crt',
      });
    } else {
      const service = mode === 'bundled' ? 'fnmesh-nats' : 'fnmesh-gateway-nats';
      expect(sidecarUrl).toBe(`nats://${service}.fnmesh.svc:4222`);
      expect(find(objects, 'Service', service).spec.ports).toEqual([expect.objectContaining({ port: 4222 })]);
      expect(env(op, OPERATOR_SETTINGS.sidecarNatsTlsCaFile.env)).toBeUndefined();
      if (mode === 'bundled') expect(env(gw, GATEWAY_SETTINGS.natsUrl.env)).toBe(sidecarUrl);
      else expect(env(gw, GATEWAY_SETTINGS.natsUrl.env)).toBeUndefined(); // the embedded broker
    }
    // auth=jwt: the gateway mounts the Secret the operator mints its user into
    expect(env(op, OPERATOR_SETTINGS.natsAuth.env)).toBe('jwt');
    const [credsNs, credsName] = env(op, OPERATOR_SETTINGS.gatewayCredsSecret.env)!.split('/');
    expect(credsNs).toBe('fnmesh');
    expect(secretHolding(gwDep.spec.template.spec, gw, env(gw, GATEWAY_SETTINGS.natsCreds.env)!)).toEqual({
      secret: credsName,
      key: CREDS_SECRET_KEY,
    });
    const account = env(op, OPERATOR_SETTINGS.natsAccountSecret.env)!;
    expect(account).toBe('fnmesh-nats-account');
    if (mode === 'embedded') {
      for (const s of [GATEWAY_SETTINGS.brokerOperator, GATEWAY_SETTINGS.brokerAccounts]) {
        const file = env(gw, s.env)!;
        expect(secretHolding(gwDep.spec.template.spec, gw, file).secret).toBe(account);
        expect(Object.values(ACCOUNT_SECRET_KEYS)).toContain(path.basename(file));
      }
    }
  });

  test('the NATS cluster: 3 servers, routes to each by its stable name, the account resolver from the operator', () => {
    const sts = objects.find((o) => o.kind === 'StatefulSet');
    if (mode !== 'bundled') {
      expect(sts).toBeUndefined();
      return;
    }
    expect(sts!.spec.replicas).toBe(3);
    expect(sts!.spec.template.spec.containers[0].image).toBe(`nats:${NATS_SERVER_VERSION}`);
    const headless = find(objects, 'Service', sts!.spec.serviceName);
    expect(headless.spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true });
    const conf = find(objects, 'ConfigMap', 'fnmesh-nats-config').data['nats.conf'] as string;
    for (const i of [0, 1, 2])
      expect(conf).toContain(`nats://fnmesh-nats-${i}.${headless.metadata.name}.fnmesh.svc.cluster.local:6222`);
    expect(conf).toMatch(/cluster \{\n\s+name: "fnmesh"/);
    expect(conf).toContain('include ./auth/resolver.conf');
    const spec = sts!.spec.template.spec as PodSpec;
    const mount = spec.containers[0]!.volumeMounts!.find((m) => m.mountPath === '/etc/nats/auth')!;
    const volume = spec.volumes!.find((v) => v.name === mount.name)!;
    expect(volume.secret).toEqual({
      secretName: env(container(objects, 'fnmesh-operator'), OPERATOR_SETTINGS.natsAccountSecret.env),
      items: [{ key: ACCOUNT_SECRET_KEYS.resolverConf, path: 'resolver.conf' }],
    });
    // every variable the config reads is set in the container
    const vars = [...conf.matchAll(/\$([A-Z_]+)/g)].map((m) => m[1]);
    const set = spec.containers[0]!.env!.map((e) => e.name);
    for (const v of vars) expect(set).toContain(v);
    expect(sts!.spec.volumeClaimTemplates[0].metadata.name).toBe('data');
    // JetStream with file storage on the claim, with auth=jwt too (the system account comes in resolver.conf)
    const js = /\njetstream \{\n {2}store_dir: (\S+)\n(?: {2}#.*\n)* {2}max_file_store: (\d+)\n/.exec(conf);
    expect(js).not.toBeNull();
    const data = spec.containers[0]!.volumeMounts!.find((m) => m.name === 'data')!;
    expect(js![1]!.startsWith(`${data.mountPath}/`)).toBe(true);
    expect(sts!.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe('10Gi');
    expect(Number(js![2])).toBe(Math.floor(0.9 * 10 * 2 ** 30));
  });

  test("the roles hold exactly common/rbac.ts's rules", () => {
    for (const [part, rbac] of Object.entries(PARTS_RBAC)) {
      expect(find(objects, 'ClusterRole', `fnmesh-${part}`).rules).toEqual(rbac.clusterRules.map((r) => r.rule));
      expect(find(objects, 'ServiceAccount', `fnmesh-${part}`).metadata.namespace).toBe('fnmesh');
    }
    expect(find(objects, 'Role', 'fnmesh-operator-leader-election').rules).toEqual(
      PARTS_RBAC.operator.namespaceRules!.rules.map((r) => r.rule),
    );
  });

  test('NetworkPolicies: NATS only for the gateway, the sidecars (the labels the operator sets) and NATS peers', () => {
    const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
    expect(policies.map((p) => p.metadata.name)).toEqual(
      expect.arrayContaining(['fnmesh-default-deny', 'fnmesh-gateway', 'fnmesh-operator']),
    );
    const functionPods = {
      namespaceSelector: {},
      podSelector: {
        matchLabels: { [MANAGED_BY_LABEL]: FIELD_MANAGER },
        matchExpressions: [{ key: SERVICE_LABEL, operator: 'Exists' }],
      },
    };
    const gateway = find(objects, 'NetworkPolicy', 'fnmesh-gateway');
    expect(gateway.spec.ingress[0]).toEqual({ ports: [{ port: 'http', protocol: 'TCP' }] });
    if (mode === 'bundled') {
      const nats = find(objects, 'NetworkPolicy', 'fnmesh-nats');
      expect(nats.spec.ingress[0].from).toContainEqual(functionPods);
      expect(nats.spec.ingress[0].from).toContainEqual({
        podSelector: { matchLabels: gateway.spec.podSelector.matchLabels },
      });
      expect(nats.spec.ingress[1]).toEqual({
        from: [{ podSelector: nats.spec.podSelector }],
        ports: [{ port: 'cluster', protocol: 'TCP' }],
      });
    }
    if (mode === 'embedded') expect(gateway.spec.ingress[1].from).toContainEqual(functionPods);
  });

  test('the helm test pod calls the gateway Service', () => {
    const pod = objects.find((o) => o.kind === 'Pod' && o.metadata.annotations?.['helm.sh/hook'] === 'test')!;
    expect(pod.spec.containers[0].env).toEqual([{ name: 'GATEWAY_URL', value: 'http://fnmesh-gateway.fnmesh.svc:80' }]);
  });
});

test("the sidecar's pull policy: image.pullPolicy unless sidecar.image.pullPolicy says", async () => {
  const policy = async (set: string[]): Promise<string | undefined> =>
    env(
      container((await renderChart({ set })).objects, 'fnmesh-operator'),
      OPERATOR_SETTINGS.sidecarImagePullPolicy.env,
    );
  expect(await policy([])).toBe('IfNotPresent');
  expect(await policy(['image.pullPolicy=Always'])).toBe('Always');
  expect(await policy(['image.pullPolicy=Always', 'sidecar.image.pullPolicy=Never'])).toBe('Never');
});

test('the ServiceMonitors and the scrape annotations', async () => {
  const on = (await renderChart({ set: ['metrics.serviceMonitor.enabled=true', 'metrics.scrapeAnnotations=false'] }))
    .objects;
  for (const part of ['operator', 'gateway']) {
    const sm = find(on, 'ServiceMonitor', `fnmesh-${part}`);
    const svc = find(on, 'Service', `fnmesh-${part}-ops`);
    expect(svc.metadata.labels).toMatchObject(sm.spec.selector.matchLabels);
    expect(sm.spec.endpoints).toEqual([{ port: 'ops', path: '/metrics', interval: '30s' }]);
    expect(find(on, 'Deployment', `fnmesh-${part}`).spec.template.metadata.annotations).toBeUndefined();
  }
  const off = (await renderChart()).objects;
  expect(off.some((o) => o.kind === 'ServiceMonitor')).toBe(false);
  expect(find(off, 'Deployment', 'fnmesh-gateway').spec.template.metadata.annotations).toMatchObject({
    'prometheus.io/scrape': 'true',
    'prometheus.io/port': '9091',
  });
});

test("the CRD helm installs is crds/'s, byte for byte", () => {
  const file = 'fnmesh.io_functionservices.yaml';
  expect(readFileSync(path.join(CHART_DIR, 'crds', file)).equals(readFileSync(path.join(REPO, 'crds', file)))).toBe(
    true,
  );
});
