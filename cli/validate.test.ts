import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REFUSED_SPECS, functionService } from '../test/helpers/refused-manifests';
import { parseFunctionService } from '../common/manifest';
import { describeRetryPolicy, functionLines, validatePaths } from './validate';

describe('fnmesh validate', () => {
  it('lists the functions of each service (the 404 of an unknown function does not)', async () => {
    const result = await validatePaths([path.join(__dirname, '..', 'examples', 'text.yaml')]);
    expect(result.errors).toBe(0);
    expect(result.lines).toEqual([
      { ok: true, text: expect.stringMatching(/text\.yaml: default\/text \(upper, count\)$/) },
      {
        ok: true,
        text: '    default/text upper: retries: calls that never ran, 4 attempts (back-off 10–250 ms); calls that may have run: reset, timeout, 5xx',
      },
      {
        ok: true,
        text: '    default/text count: retries: calls that never ran, 4 attempts (back-off 10–250 ms); calls that may have run: never (at-most-once)',
      },
    ]);
  });
});

describe('the retry policy of each function', () => {
  const shop = parseFunctionService(
    {
      apiVersion: 'fnmesh.io/v1alpha1',
      kind: 'FunctionService',
      metadata: { name: 'shop', namespace: 'prod' },
      spec: {
        retry: { attempts: 3, backoff: { maxMs: 100 } },
        functions: [
          { name: 'charge' },
          { name: 'quote', retry: { retryOn: ['reset', 503, 'timeout'], perTryTimeoutMs: 800 } },
          { name: 'once', retry: { attempts: 1 } },
          { name: 'default', rule: { rule: 'deny' } },
        ],
      },
    },
    'shop.yaml',
  );

  test('is resolved from the service and the function, in words; the default rule holder is not a function', () => {
    expect(functionLines(shop)).toEqual([
      '    prod/shop charge: retries: calls that never ran, 3 attempts (back-off 10–100 ms); calls that may have run: never (at-most-once)',
      '    prod/shop quote: retries: calls that never ran, 3 attempts (back-off 10–100 ms); calls that may have run: reset, 503, timeout; per-try timeout 800 ms',
      '    prod/shop once: retries: none (1 attempt)',
    ]);
  });

  test('one attempt retries nothing, whatever retryOn says', () => {
    expect(describeRetryPolicy({ attempts: 1, backoff: { initialMs: 1, maxMs: 1 }, retryOn: ['5xx'] })).toBe(
      'retries: none (1 attempt)',
    );
  });
});

describe('failure settings that contradict each other', () => {
  test('are refused with the message the manifest schema gives (the same specs the API server refuses)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-validate-failures-'));
    const files = REFUSED_SPECS.map((c, i) => {
      const file = path.join(dir, `case-${i}.yaml`);
      writeFileSync(file, JSON.stringify(functionService(c.spec))); // JSON is YAML
      return file;
    });
    const result = await validatePaths([dir]);
    expect(result.errors).toBe(REFUSED_SPECS.length);
    expect(result.lines).toEqual(
      expect.arrayContaining(
        REFUSED_SPECS.map((c, i) => ({ ok: false, text: `${files[i]}: invalid FunctionService: ${c.zod}` })),
      ),
    );
  });
});
