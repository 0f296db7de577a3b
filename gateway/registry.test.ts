import {
  DEFAULT_CIRCUIT_BREAKER,
  DEFAULT_RETRY,
  IDEMPOTENT_RETRY_ON,
  parseFunctionService,
  type FunctionService,
} from '../common';
import { SOURCE_FILE_ANNOTATION } from '../common/manifest-source';
import { CircuitBreakers } from './circuit-breaker';
import { breakerKeys, buildRegistry, describeRegistry, type ResolvedFunction } from './registry';

function svc(
  name: string,
  functions: unknown[],
  extra: Record<string, unknown> = {},
  namespace = 'default',
): FunctionService {
  return parseFunctionService(
    {
      apiVersion: 'fnmesh.io/v1alpha1',
      kind: 'FunctionService',
      metadata: { name, namespace, annotations: { [SOURCE_FILE_ANNOTATION]: `/m/${name}.yaml` } },
      spec: { functions, ...extra },
    },
    `${name}.yaml`,
  );
}
const noFunc = async (): Promise<unknown> => {
  throw new Error('no func expected');
};
const allowInput = { params: null };

describe('buildRegistry', () => {
  it('uses the function rule, then the service default rule, then the gateway default', async () => {
    const { registry, errors } = buildRegistry(
      [
        svc('greeter', [
          { name: 'hello', rule: { rule: 'allow' } },
          { name: 'plain' },
          { name: 'default', rule: { rule: 'authenticated' } },
        ]),
        svc('bare', [{ name: 'x' }]),
      ],
      undefined,
    );
    expect(errors).toEqual([]);
    const hello = registry.lookup('default', 'greeter', 'hello');
    expect(hello.kind).toBe('ok');
    if (hello.kind !== 'ok') return;
    expect(hello.fn.ruleOrigin).toBe('function');
    expect(hello.fn.subject).toBe('fnmesh.call.default.greeter.hello');
    expect((await hello.fn.rule.evaluate(allowInput, noFunc)).allow).toBe(true);

    const plain = registry.lookup('default', 'greeter', 'plain');
    if (plain.kind !== 'ok') throw new Error('expected ok');
    expect(plain.fn.ruleOrigin).toBe('service-default');
    expect((await plain.fn.rule.evaluate(allowInput, noFunc)).allow).toBe(false);
    expect((await plain.fn.rule.evaluate({ params: null, auth: { sub: 'u' } }, noFunc)).allow).toBe(true);

    // Undeclared function with a `default` entry: routed with the default rule.
    const other = registry.lookup('default', 'greeter', 'other');
    if (other.kind !== 'ok') throw new Error('expected ok');
    expect(other.fn.ruleOrigin).toBe('service-default');
    expect(other.fn.subject).toBe('fnmesh.call.default.greeter.other');

    const x = registry.lookup('default', 'bare', 'x');
    if (x.kind !== 'ok') throw new Error('expected ok');
    expect(x.fn.ruleOrigin).toBe('gateway-default');
    expect((await x.fn.rule.evaluate(allowInput, noFunc)).allow).toBe(false);
  });

  it('applies a configured gateway default rule', async () => {
    const { registry } = buildRegistry([svc('bare', [{ name: 'x' }])], { rule: 'allow' });
    const x = registry.lookup('default', 'bare', 'x');
    if (x.kind !== 'ok') throw new Error('expected ok');
    expect((await x.fn.rule.evaluate(allowInput, noFunc)).allow).toBe(true);
  });

  it('reports unknown services and functions (with the known ones)', () => {
    const { registry } = buildRegistry([svc('greeter', [{ name: 'hello' }, { name: 'bye' }])], undefined);
    expect(registry.lookup('default', 'nope', 'hello')).toEqual({ kind: 'no-service' });
    expect(registry.lookup('other', 'greeter', 'hello')).toEqual({ kind: 'no-service' });
    expect(registry.lookup('default', 'greeter', 'other')).toEqual({ kind: 'no-function', known: ['hello', 'bye'] });
  });

  it('computes timeouts: function timeoutMs, else the service timeoutMs', () => {
    const { registry } = buildRegistry(
      [
        svc('t', [{ name: 'fast', timeoutMs: 100 }, { name: 'slow' }, { name: 'default', timeoutMs: 300 }], {
          timeoutMs: 2000,
        }),
      ],
      undefined,
    );
    const get = (fn: string): number => {
      const r = registry.lookup('default', 't', fn);
      if (r.kind !== 'ok') throw new Error('expected ok');
      return r.fn.timeoutMs;
    };
    expect(get('fast')).toBe(100);
    expect(get('slow')).toBe(2000);
    expect(get('undeclared')).toBe(300);
  });

  it('keeps the previous good version of a service whose rules do not compile, and names the file', () => {
    const good = svc('greeter', [{ name: 'hello', rule: { rule: 'allow' } }]);
    const first = buildRegistry([good], undefined);
    const bad = svc('greeter', [
      { name: 'hello', rule: { rule: 'match', type: 'string', eval: '==', f1: 'args.nope.x', f2: 'a' } },
      { name: 'new' },
    ]);
    const second = buildRegistry([bad], undefined, first.registry);
    expect(second.errors).toHaveLength(1);
    expect(second.errors[0]!.service).toBe('default/greeter');
    expect(second.errors[0]!.message).toContain('/m/greeter.yaml');
    expect(second.errors[0]!.message).toContain('spec.functions[hello].rule.f1');
    expect(second.errors[0]!.message).toContain('previous version stays');
    expect(second.registry.lookup('default', 'greeter', 'hello').kind).toBe('ok');
    expect(second.registry.lookup('default', 'greeter', 'new').kind).toBe('no-function');

    // Without a previous version, the service is not routed at all.
    const alone = buildRegistry([bad], undefined);
    expect(alone.errors[0]!.message).toContain('not routed');
    expect(alone.registry.lookup('default', 'greeter', 'hello')).toEqual({ kind: 'no-service' });
  });

  it('reports a service defined twice and keeps the first', () => {
    const a = svc('greeter', [{ name: 'a' }]);
    const b = svc('greeter', [{ name: 'b' }]);
    const { registry, errors } = buildRegistry([a, b], undefined);
    expect(errors).toHaveLength(1);
    expect(registry.lookup('default', 'greeter', 'a').kind).toBe('ok');
  });

  it('separates namespaces and lists services', () => {
    const { registry } = buildRegistry(
      [svc('greeter', [{ name: 'hello' }], {}, 'prod'), svc('greeter', [{ name: 'hi' }, { name: 'default' }])],
      undefined,
    );
    expect(registry.lookup('prod', 'greeter', 'hello').kind).toBe('ok');
    expect(registry.lookup('default', 'greeter', 'hello').kind).toBe('ok');
    expect(registry.lookup('prod', 'greeter', 'hi').kind).toBe('no-function');
    expect(describeRegistry(registry)).toEqual([
      {
        namespace: 'default',
        name: 'greeter',
        functions: [
          {
            name: 'hi',
            timeoutMs: 10000,
            rule: { type: 'deny', from: 'gateway-default', definition: { rule: 'deny' } },
            retry: { ...DEFAULT_RETRY, retryOn: [] },
            circuitBreaker: { ...DEFAULT_CIRCUIT_BREAKER, state: 'closed', failuresInARow: 0 },
          },
        ],
        acceptsOtherFunctions: true,
        otherFunctions: {
          timeoutMs: 10000,
          retry: { ...DEFAULT_RETRY, retryOn: [] },
          circuitBreaker: { ...DEFAULT_CIRCUIT_BREAKER, state: 'closed', failuresInARow: 0 },
        },
      },
      {
        namespace: 'prod',
        name: 'greeter',
        functions: [
          {
            name: 'hello',
            timeoutMs: 10000,
            rule: { type: 'deny', from: 'gateway-default', definition: { rule: 'deny' } },
            retry: { ...DEFAULT_RETRY, retryOn: [] },
            circuitBreaker: { ...DEFAULT_CIRCUIT_BREAKER, state: 'closed', failuresInARow: 0 },
          },
        ],
        acceptsOtherFunctions: false,
      },
    ]);
  });

  it('describes each rule by its type, its origin and its definition', () => {
    const match = { rule: 'match', type: 'string', eval: '==', f1: 'args.auth.role', f2: 'admin' };
    const { registry } = buildRegistry(
      [
        svc('shop', [
          { name: 'buy', rule: { rule: 'and', clauses: [{ rule: 'authenticated' }, match] } },
          { name: 'look' },
          { name: 'default', rule: { rule: 'allow' } },
        ]),
        svc('policy', [{ name: 'check' }]),
      ],
      { rule: 'authenticated' },
    );
    const listing = describeRegistry(registry) as { name: string; functions: { name: string; rule: unknown }[] }[];
    expect(listing.find((s) => s.name === 'shop')!.functions).toMatchObject([
      {
        name: 'buy',
        timeoutMs: 10000,
        rule: {
          type: 'and',
          from: 'function',
          definition: { rule: 'and', clauses: [{ rule: 'authenticated' }, match] },
        },
      },
      {
        name: 'look',
        timeoutMs: 10000,
        rule: { type: 'allow', from: 'service-default', definition: { rule: 'allow' } },
      },
    ]);
    expect(listing.find((s) => s.name === 'policy')!.functions).toMatchObject([
      {
        name: 'check',
        timeoutMs: 10000,
        rule: { type: 'authenticated', from: 'gateway-default', definition: { rule: 'authenticated' } },
      },
    ]);
  });
});

describe('retry policies and circuit breakers in the routing table', () => {
  const build = (): ReturnType<typeof buildRegistry>['registry'] =>
    buildRegistry(
      [
        svc(
          'shop',
          [
            { name: 'buy' },
            { name: 'look', idempotent: true },
            { name: 'pay', retry: { attempts: 2, retryOn: [503] } },
            { name: 'default', retry: { perTryTimeoutMs: 300, retryOn: ['timeout'] } },
          ],
          { retry: { attempts: 3 }, circuitBreaker: { consecutiveFailures: 2 } },
        ),
      ],
      undefined,
    ).registry;
  const fn = (registry: ReturnType<typeof build>, name: string): ResolvedFunction => {
    const found = registry.lookup('default', 'shop', name);
    if (found.kind !== 'ok') throw new Error(`no ${name}`);
    return found.fn;
  };

  it("resolves each function's retry policy over the service's, and routes undeclared functions with the default's", () => {
    const registry = build();
    expect(fn(registry, 'buy').retry).toEqual({ ...DEFAULT_RETRY, attempts: 3, retryOn: [] });
    expect(fn(registry, 'look').retry).toEqual({ ...DEFAULT_RETRY, attempts: 3, retryOn: IDEMPOTENT_RETRY_ON });
    expect(fn(registry, 'pay').retry).toEqual({ ...DEFAULT_RETRY, attempts: 2, retryOn: [503] });
    expect(fn(registry, 'other').retry).toEqual({
      ...DEFAULT_RETRY,
      attempts: 3,
      retryOn: ['timeout'],
      perTryTimeoutMs: 300,
    });
  });

  it("gives every declared function its own breaker and the undeclared ones the default function's", () => {
    const registry = build();
    expect(fn(registry, 'buy').breaker).toEqual({
      key: 'default/shop.buy',
      namespace: 'default',
      service: 'shop',
      function: 'buy',
      policy: { ...DEFAULT_CIRCUIT_BREAKER, consecutiveFailures: 2 },
    });
    expect(fn(registry, 'other').breaker).toBe(fn(registry, 'another').breaker);
    expect(fn(registry, 'other').breaker.key).toBe('default/shop.default');
    expect([...breakerKeys(registry)].sort()).toEqual([
      'default/shop.buy',
      'default/shop.default',
      'default/shop.look',
      'default/shop.pay',
    ]);
  });

  it('keeps a breaker across a rebuild of the unchanged service, and lists its state', () => {
    const breakers = new CircuitBreakers();
    const first = build();
    const now = Date.now();
    breakers.record(fn(first, 'buy').breaker, 'no-replica', false, now);
    breakers.record(fn(first, 'buy').breaker, 'no-replica', false, now);
    const rebuilt = build();
    breakers.retain(breakerKeys(rebuilt));
    const listing = describeRegistry(rebuilt, breakers) as {
      functions: { name: string; circuitBreaker: unknown }[];
    }[];
    expect(listing[0]!.functions.find((f) => f.name === 'buy')!.circuitBreaker).toEqual({
      ...DEFAULT_CIRCUIT_BREAKER,
      consecutiveFailures: 2,
      state: 'open',
      failuresInARow: 2,
      openUntil: new Date(now + DEFAULT_CIRCUIT_BREAKER.openMs).toISOString(),
    });
    expect(listing[0]!.functions.find((f) => f.name === 'look')!.circuitBreaker).toMatchObject({
      state: 'closed',
      failuresInARow: 0,
    });
  });
});
