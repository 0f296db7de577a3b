/**
 * deploy/rbac/ and the chart's rule templates are both rendered from common/rbac.ts: the committed files must be
 * exactly what cli/rbac-files.ts writes (test/chart.test.ts checks the chart's rendered roles hold the same rules).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { OPERATOR_RBAC, GATEWAY_RBAC } from '../common/rbac';
import { rbacFiles } from './rbac-files';

const repo = path.resolve(__dirname, '..');

test.each(Object.entries(rbacFiles()))('%s is what npm run generate writes', (file, text) => {
  expect(readFileSync(path.join(repo, file), 'utf8')).toBe(text);
});

test("deploy/rbac's roles hold exactly common/rbac.ts's rules", () => {
  for (const [file, part] of [
    ['operator.yaml', OPERATOR_RBAC],
    ['gateway.yaml', GATEWAY_RBAC],
  ] as const) {
    const docs = parseAllDocuments(readFileSync(path.join(repo, 'deploy', 'rbac', file), 'utf8')).map(
      (d) => d.toJS() as { kind: string; metadata: { name: string }; rules?: unknown[] },
    );
    const role = docs.find((d) => d.kind === 'ClusterRole')!;
    expect(role.metadata.name).toBe(part.name);
    expect(role.rules).toEqual(part.clusterRules.map((r) => r.rule));
    const ns = docs.find((d) => d.kind === 'Role');
    expect(ns?.rules).toEqual(part.namespaceRules?.rules.map((r) => r.rule));
  }
});
