/**
 * The FunctionService CRD (crds/) on a real kube-apiserver: installs with `kubectl apply -f crds/`, takes the
 * examples, documents itself through `kubectl explain`, prints its columns, scales, applies its defaults, and
 * refuses each kind of invalid object with a message that names the field.
 */
import { listManifestFiles } from '../common/manifest-files';
import path from 'node:path';
import { installCrds } from './helpers/crds';
import { MAX_FUNCTIONS } from '../crds/generate';
import { DEFAULT_OUTLIER_DETECTION, DEFAULT_QUEUE_LENGTH } from '../common/resilience';
import { startControlPlane, type ControlPlane, type KubectlResult } from './helpers/control-plane';
import { ACCEPTED_SPECS, REFUSED_SPECS, functionService } from './helpers/refused-manifests';
import { waitFor } from './helpers/wait';

jest.setTimeout(120_000);

const repo = path.resolve(__dirname, '..');
const crdsDir = path.join(repo, 'crds');
const examples = listManifestFiles([path.join(repo, 'examples')]).map((f) => path.relative(repo, f));

let cp: ControlPlane;

beforeAll(async () => {
  cp = await startControlPlane();
  await installCrds(cp);
}, 300_000);

afterAll(async () => {
  await cp?.stop();
});

const out = (r: KubectlResult): string => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

async function ok(args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${out(r)}`);
  return r.stdout;
}

/** A FunctionService manifest with the given name and spec body (YAML, indented by the caller). */
const fsvc = (name: string, spec: string): string => `apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata:
  name: ${JSON.stringify(name)}
spec:
${spec}
`;

const withRule = (rule: string): string => fsvc('ruled', `  functions:\n    - name: f\n      rule: ${rule}\n`);

/** Server-side dry-run apply; resolves to the result (never throws). */
const dryRun = (manifest: string, extra: string[] = []): Promise<KubectlResult> =>
  cp.kubectl(['apply', '--dry-run=server', ...extra, '-f', '-'], manifest);

async function expectRefused(manifest: string, ...fragments: (string | RegExp)[]): Promise<string> {
  const r = await dryRun(manifest);
  if (r.code === 0) throw new Error(`expected the API server to refuse:\n${manifest}\nbut it accepted it: ${out(r)}`);
  for (const f of fragments) {
    if (typeof f === 'string') expect(r.stderr).toContain(f);
    else expect(r.stderr).toMatch(f);
  }
  return r.stderr;
}

describe('installing', () => {
  test('the CRD is established with its names, short name and category', async () => {
    const crd = JSON.parse(await ok(['get', 'crd', 'functionservices.fnmesh.io', '-o', 'json'])) as {
      spec: { names: { shortNames: string[]; categories: string[]; singular: string }; scope: string };
    };
    expect(crd.spec.names.shortNames).toEqual(['fsvc']);
    expect(crd.spec.names.categories).toEqual(['fnmesh']);
    expect(crd.spec.names.singular).toBe('functionservice');
    expect(crd.spec.scope).toBe('Namespaced');
    // kubectl apply -f crds/ again is a no-op (the generator script beside the YAML is not applied).
    const again = await ok(['apply', '-f', crdsDir]);
    expect(again).toContain('unchanged');
  });

  test.each(examples)('the example %s is accepted', async (file) => {
    const r = await cp.kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', path.join(repo, file)]);
    expect(out(r)).toContain('(server dry run)');
    expect(r.code).toBe(0);
  });
});

describe('kubectl explain', () => {
  test('documents every field of the spec', async () => {
    const text = await waitFor(
      async () => {
        const r = await cp.kubectl(['explain', 'functionservice.spec']);
        return r.code === 0 && r.stdout.includes('replicas') ? r.stdout : undefined;
      },
      { timeoutMs: 30_000, what: 'kubectl explain functionservice.spec' },
    );
    for (const field of [
      'replicas',
      'port',
      'healthPath',
      'concurrency',
      'timeoutMs',
      'functions',
      'container',
      'local',
    ]) {
      expect(text).toMatch(new RegExp(`^  ${field}\\s`, 'm'));
    }
    expect(text).toContain('Default: 8080');
    expect(text).not.toContain('<empty>');
  });

  test('documents rules, down to their operands', async () => {
    const rule = await ok(['explain', 'functionservice.spec.functions.rule']);
    expect(rule.replace(/\s+/g, ' ')).toContain('authenticated: allows a call that carries a valid JWT');
    for (const field of ['rule', 'type', 'eval', 'f1', 'f2', 'clauses', 'service', 'func', 'namespace']) {
      expect(rule).toMatch(new RegExp(`^  ${field}\\s`, 'm'));
    }
    const f1 = await ok(['explain', 'functionservice.spec.functions.rule.f1']);
    expect(f1.replace(/\s+/g, ' ')).toContain('args.auth.<claim> (a claim of the verified JWT)');
    const recursive = await ok(['explain', 'functionservice', '--recursive']);
    expect(recursive).toContain('clauses');
  });
});

describe('a FunctionService object', () => {
  beforeAll(async () => {
    await ok(['apply', '-f', path.join(repo, 'examples', 'greeter.yaml')]);
  });

  test('kubectl get fsvc shows ready/desired replicas, the Ready condition and age', async () => {
    const before = await ok(['get', 'fsvc']);
    expect(before.split('\n')[0]).toMatch(/^NAME\s+READY\s+DESIRED\s+STATUS\s+AGE$/);
    expect(before).toMatch(/^greeter\s+2\s+\d+s$/m); // no status yet: READY and STATUS are empty
    // What the operator will write, through the status subresource (which the status schema must accept).
    const status = {
      status: {
        observedGeneration: 1,
        replicas: 2,
        readyReplicas: 1,
        updatedReplicas: 2,
        availableReplicas: 1,
        selector: 'fnmesh.io/service=greeter',
        conditions: [
          {
            type: 'Ready',
            status: 'False',
            reason: 'ReplicasNotReady',
            message: '1 of 2 replicas ready',
            lastTransitionTime: '2026-01-01T00:00:00Z',
            observedGeneration: 1,
          },
        ],
      },
    };
    await ok(['patch', 'fsvc', 'greeter', '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]);
    const table = await ok(['get', 'fsvc']);
    expect(table).toMatch(/^greeter\s+1\s+2\s+False\s+\d+s$/m);
    const wide = await ok(['get', 'fsvc', '-o', 'wide']);
    expect(wide.split('\n')[0]).toMatch(/^NAME\s+READY\s+DESIRED\s+STATUS\s+REASON\s+AGE$/);
    expect(wide).toMatch(/^greeter\s+1\s+2\s+False\s+ReplicasNotReady\s+\d+s$/m);
    // A bad status is refused too.
    const bad = await cp.kubectl([
      'patch',
      'fsvc',
      'greeter',
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"conditions":[{"type":"Ready","status":"Maybe"}]}}',
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('status.conditions[0].status');
    expect(await ok(['get', 'fnmesh'])).toContain('greeter');
  });

  test('kubectl scale changes spec.replicas through the scale subresource', async () => {
    await ok(['scale', 'fsvc', 'greeter', '--replicas=3']);
    expect(await ok(['get', 'fsvc', 'greeter', '-o', 'jsonpath={.spec.replicas}'])).toBe('3');
    const scale = JSON.parse(
      await ok(['get', '--raw', '/apis/fnmesh.io/v1alpha1/namespaces/default/functionservices/greeter/scale']),
    ) as {
      spec: { replicas: number };
      status: { replicas: number; selector?: string };
    };
    expect(scale.spec.replicas).toBe(3);
    expect(scale.status.selector).toBe('fnmesh.io/service=greeter');
    await ok(['scale', 'fsvc', 'greeter', '--replicas=0']);
    expect(await ok(['get', 'fsvc', 'greeter', '-o', 'jsonpath={.spec.replicas}'])).toBe('0');
  });

  test('the server fills in the defaults of common/manifest.ts', async () => {
    await ok(['apply', '-f', '-'], fsvc('minimal', '  container: { image: example/minimal:1 }'));
    const obj = JSON.parse(await ok(['get', 'fsvc', 'minimal', '-o', 'json'])) as { spec: Record<string, unknown> };
    expect(obj.spec).toMatchObject({
      replicas: 1,
      port: 8080,
      healthPath: '/healthz',
      concurrency: 64,
      timeoutMs: 10000,
      functions: [],
    });
  });

  test('rules nest four levels of and/or deep', async () => {
    const leaf = '{ rule: authenticated }';
    let rule = leaf;
    for (let i = 0; i < 4; i++) rule = `{ rule: ${i % 2 ? 'or' : 'and'}, clauses: [${rule}, { rule: allow }] }`;
    const r = await dryRun(withRule(rule));
    expect(out(r)).toContain('created (server dry run)');
  });

  test('env takes values and valueFrom sources, resources take quantities, pull policy and pull Secrets', async () => {
    const r = await dryRun(
      fsvc(
        'envy',
        [
          '  container:',
          '    image: example/envy:1',
          '    env:',
          '      - { name: A, value: "1" }',
          '      - { name: B, valueFrom: { secretKeyRef: { name: s, key: k } } }',
          '    resources: { requests: { cpu: 100m, memory: 64Mi }, limits: { cpu: 1, memory: 128Mi } }',
          '    imagePullPolicy: Always',
          '  imagePullSecrets: [{ name: regcred }, { name: other.registry }]',
        ].join('\n'),
      ),
      ['--validate=strict'],
    );
    expect(out(r)).toContain('created (server dry run)');
  });
});

describe('invalid objects are refused with a message naming the field', () => {
  test('an image pull policy that is not Always, IfNotPresent or Never', async () => {
    await expectRefused(
      fsvc('pull', '  container: { image: example/pull:1, imagePullPolicy: Sometimes }'),
      'spec.container.imagePullPolicy',
      'Unsupported value: "Sometimes"',
    );
  });

  test('image pull Secrets: a name that is no Secret name, a Secret listed twice, an entry without a name', async () => {
    await expectRefused(fsvc('pulls', '  imagePullSecrets: [{ name: Reg_Cred }]'), 'spec.imagePullSecrets[0].name');
    await expectRefused(
      fsvc('pulls', '  imagePullSecrets: [{ name: regcred }, { name: regcred }]'),
      'spec.imagePullSecrets[1]',
      'Duplicate value',
    );
    await expectRefused(fsvc('pulls', '  imagePullSecrets: [{}]'), 'spec.imagePullSecrets[0].name', 'Required value');
  });

  test("an unknown field (kubectl --validate=strict, also kubectl's default)", async () => {
    const bad = fsvc('typo', '  replica: 2');
    const strict = await dryRun(bad, ['--validate=strict']);
    expect(strict.code).not.toBe(0);
    expect(strict.stderr).toContain('unknown field "spec.replica"');
    const byDefault = await dryRun(bad);
    expect(byDefault.code).not.toBe(0);
    expect(byDefault.stderr).toContain('unknown field "spec.replica"');
    const nested = await dryRun(withRule('{ rule: allow, clause: [] }'));
    expect(nested.stderr).toContain('unknown field "spec.functions[0].rule.clause"');
  });

  test.each(['my.service', 'MyService', 'a'.repeat(64), '-svc'])('the service name %s', async (name) => {
    await expectRefused(fsvc(name, '  replicas: 1'), /metadata\.name/);
  });

  test('a service name with a dot gets the DNS-label message', async () => {
    await expectRefused(
      fsvc('my.service', '  replicas: 1'),
      'metadata.name',
      'must be a DNS label',
      'metadata.name "my.service" must be a DNS label',
    );
  });

  test.each(['bad.name', '1st', 'has space', 'a*'])('the function name %s', async (name) => {
    await expectRefused(fsvc('fnname', `  functions: [{ name: ${JSON.stringify(name)} }]`), 'spec.functions[0].name');
  });

  test('a function listed twice', async () => {
    await expectRefused(
      fsvc('twice', '  functions: [{ name: f }, { name: f }]'),
      'spec.functions[1]',
      'Duplicate value',
    );
  });

  test('negative replicas and out-of-range numbers', async () => {
    await expectRefused(fsvc('neg', '  replicas: -1'), 'spec.replicas', 'greater than or equal to 0');
    await expectRefused(fsvc('port', '  port: 70000'), 'spec.port');
    await expectRefused(fsvc('timeout', '  functions: [{ name: f, timeoutMs: 0 }]'), 'spec.functions[0].timeoutMs');
    await expectRefused(fsvc('health', '  healthPath: healthz'), 'spec.healthPath');
  });

  test('an unknown rule type, match type or operator: the message quotes it', async () => {
    await expectRefused(withRule('{ rule: allw }'), 'spec.functions[0].rule.rule', 'Unsupported value: "allw"');
    await expectRefused(
      withRule('{ rule: match, type: integer, eval: ==, f1: 1, f2: 1 }'),
      'spec.functions[0].rule.type',
      'Unsupported value: "integer"',
    );
    await expectRefused(
      withRule('{ rule: match, type: number, eval: =, f1: 1, f2: 1 }'),
      'spec.functions[0].rule.eval',
      'Unsupported value: "="',
    );
  });

  test('match without f2, or without type', async () => {
    await expectRefused(
      withRule('{ rule: match, type: string, eval: ==, f1: args.auth.sub }'),
      'spec.functions[0].rule',
      'a match rule needs both f1 and f2',
    );
    await expectRefused(
      withRule('{ rule: match, eval: ==, f1: args.auth.sub, f2: x }'),
      'spec.functions[0].rule.type',
      'a match rule needs type, eval, f1 and f2',
    );
  });

  test('and/or without clauses, with empty clauses, leaf rules with clauses', async () => {
    await expectRefused(
      withRule('{ rule: and }'),
      'spec.functions[0].rule.clauses',
      'and/or rules need a non-empty clauses list',
      'e.g. {rule: and, clauses: [{rule: authenticated}]}',
    );
    await expectRefused(withRule('{ rule: or, clauses: [] }'), 'spec.functions[0].rule.clauses');
    await expectRefused(
      withRule('{ rule: allow, clauses: [{ rule: deny }] }'),
      'spec.functions[0].rule.clauses',
      'only and/or rules take clauses, not "allow" rules',
    );
  });

  test('fields of another rule kind', async () => {
    await expectRefused(
      withRule('{ rule: allow, type: string }'),
      'spec.functions[0].rule',
      'type and eval belong to match rules only, not to "allow" rules',
    );
    await expectRefused(
      withRule('{ rule: deny, service: authz }'),
      'spec.functions[0].rule',
      'service, func and namespace belong to func rules only, not to "deny" rules',
    );
    await expectRefused(
      withRule('{ rule: allow, f1: x }'),
      'spec.functions[0].rule',
      'f1 and f2 belong to match rules only',
    );
    await expectRefused(
      withRule('{ rule: func, service: authz }'),
      'spec.functions[0].rule.service',
      'a func rule needs service and func',
    );
    await expectRefused(withRule('{ rule: func, service: Authz.x, func: f }'), 'spec.functions[0].rule.service');
  });

  test.each([
    ['arg.auth.sub'],
    ['args.auht.sub'],
    ['Args.auth.sub'],
    ['utils.exist(args.auth.sub)'],
    ['utils.exists(arg.auth.sub)'],
    ['args.caller.name'],
  ])('the mistyped variable %s', async (variable) => {
    const stderr = await expectRefused(
      withRule(`{ rule: match, type: string, eval: ==, f1: ${JSON.stringify(variable)}, f2: root }`),
      'spec.functions[0].rule.f1',
    );
    expect(stderr).toContain('must not look like a mistyped variable');
  });

  test('a mistyped variable deep inside and/or clauses, in f2', async () => {
    const rule =
      '{ rule: and, clauses: [{ rule: or, clauses: [{ rule: match, type: string, eval: ==, f1: root, f2: args.params.x }, ' +
      '{ rule: match, type: string, eval: ==, f1: root, f2: ags.params.x }] }] }';
    await expectRefused(withRule(rule), 'spec.functions[0].rule.clauses[0].clauses[1].f2');
  });

  test('an ordering operator on a bool or a string, a non-== operator on a bool', async () => {
    const m = (type: string, op: string): string =>
      withRule(`{ rule: match, type: ${type}, eval: '${op}', f1: args.params.x, f2: true }`);
    await expectRefused(
      m('bool', '<'),
      'spec.functions[0].rule.eval',
      'type bool takes only the operators == and !=, not "<"',
    );
    await expectRefused(m('bool', 'in'), 'spec.functions[0].rule.eval');
    await expectRefused(
      m('string', '>='),
      'spec.functions[0].rule.eval',
      'type string takes ==, !=, in and notIn, not ">="',
      'the ordering operators <, <=, >, >= need type number or date',
    );
    // deep inside and/or, the path follows the clauses
    await expectRefused(
      withRule(
        "{ rule: or, clauses: [{ rule: allow }, { rule: and, clauses: [{ rule: deny }, { rule: match, type: bool, eval: '>', f1: args.params.x, f2: true }] }] }",
      ),
      'spec.functions[0].rule.clauses[1].clauses[1].eval',
      'type bool takes only the operators == and !=, not ">"',
    );
    for (const [type, op] of [
      ['number', '<'],
      ['date', '>='],
      ['bool', '!='],
      ['string', 'notIn'],
    ] as const) {
      const r = await dryRun(m(type, op));
      expect(out(r)).toContain('created (server dry run)');
    }
  });

  test('and/or nested deeper than the schema allows', async () => {
    let rule = '{ rule: allow }';
    for (let i = 0; i < 5; i++) rule = `{ rule: and, clauses: [${rule}] }`;
    const deepest = 'spec.functions[0].rule.clauses[0].clauses[0].clauses[0].clauses[0]';
    // kubectl's strict field validation refuses the clauses the deepest level does not have...
    await expectRefused(withRule(rule), `unknown field "${deepest}.clauses"`);
    // ...and without it (clauses pruned), the rule kind is refused.
    const lax = await dryRun(withRule(rule), ['--validate=false']);
    expect(lax.code).not.toBe(0);
    expect(lax.stderr).toContain(`${deepest}.rule: Unsupported value: "and"`);
  });
});

describe('failure settings: the CEL rules refuse what the manifest schema refuses (test/helpers/refused-manifests.ts)', () => {
  test.each(REFUSED_SPECS.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    await expectRefused(JSON.stringify(functionService(c.spec)), ...c.apiServer);
  });

  test.each(ACCEPTED_SPECS.map((c) => [c.name, c] as const))('accepts %s', async (_name, c) => {
    const r = await dryRun(JSON.stringify(functionService(c.spec)), ['--validate=strict']);
    expect(out(r)).toContain('created (server dry run)');
  });

  test.each([['sometimes'], [499], [600], ['503']])('a retryOn entry %j', async (entry) => {
    await expectRefused(
      JSON.stringify(functionService({ functions: [{ name: 'f', retry: { retryOn: ['reset', entry] } }] })),
      'spec.functions[0].retry.retryOn[1]',
      '"reset", "timeout", "5xx" or one status from 500 to 599',
    );
  });

  test('a service at the most functions, each with every failure setting, fits the CEL cost budget', async () => {
    const functions = Array.from({ length: MAX_FUNCTIONS }, (_, i) => ({
      name: `f${i}`,
      timeoutMs: 2000,
      idempotent: true,
      retry: {
        attempts: 3,
        backoff: { initialMs: 5, maxMs: 50 },
        retryOn: ['reset', 'timeout', 503],
        perTryTimeoutMs: 500,
      },
    }));
    const spec = { retry: { perTryTimeoutMs: 500, retryOn: ['timeout'] }, functions };
    const r = await dryRun(JSON.stringify(functionService(spec, 'many')));
    expect(out(r)).toContain('created (server dry run)');
  });

  test('the server fills in queueLength, and kubectl explain documents the new fields with their defaults', async () => {
    const r = await dryRun(fsvc('queued', '  container: { image: example/q:1 }'), ['-o', 'json']);
    expect((JSON.parse(r.stdout) as { spec: { queueLength: number } }).spec.queueLength).toBe(DEFAULT_QUEUE_LENGTH);
    const spec = await ok(['explain', 'functionservice.spec']);
    for (const field of ['queueLength', 'retry', 'outlierDetection', 'circuitBreaker'])
      expect(spec).toMatch(new RegExp(`^  ${field}\\s`, 'm'));
    const fn = (await ok(['explain', 'functionservice.spec.functions'])).replace(/\s+/g, ' ');
    expect(fn).toContain('idempotent');
    const od = (await ok(['explain', 'functionservice.spec.outlierDetection'])).replace(/\s+/g, ' ');
    expect(od).toContain(`Default: ${DEFAULT_OUTLIER_DETECTION.consecutiveFailures}.`);
  });
});
