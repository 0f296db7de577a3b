/**
 * The FunctionService names of common/crd-names.ts against the YAML that spells them literally: the RBAC
 * roles in deploy/rbac and the example manifests.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { API_VERSION, CRD_GROUP, CRD_NAME, CRD_PLURAL, KIND, functionServicePath } from './crd-names';

const repo = path.resolve(__dirname, '..');
const yamlDocs = (dir: string): { file: string; doc: Record<string, unknown> }[] =>
  readdirSync(path.join(repo, dir))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) =>
      parseAllDocuments(readFileSync(path.join(repo, dir, f), 'utf8')).map((d) => ({
        file: `${dir}/${f}`,
        doc: d.toJS() as Record<string, unknown>,
      })),
    );

test('the names and paths', () => {
  expect(API_VERSION).toBe('fnmesh.io/v1alpha1');
  expect(CRD_NAME).toBe('functionservices.fnmesh.io');
  expect(functionServicePath()).toBe('/apis/fnmesh.io/v1alpha1/functionservices');
  expect(functionServicePath('shop')).toBe('/apis/fnmesh.io/v1alpha1/namespaces/shop/functionservices');
  expect(functionServicePath('shop', 'cart')).toBe('/apis/fnmesh.io/v1alpha1/namespaces/shop/functionservices/cart');
});

test('deploy/rbac grants the FunctionService group and plural (and nothing else of fnmesh)', () => {
  const builtIn = new Set(['', 'apps', 'coordination.k8s.io']);
  const grants: string[] = [];
  for (const { file, doc } of yamlDocs('deploy/rbac')) {
    if (doc.kind !== 'ClusterRole' && doc.kind !== 'Role') continue;
    for (const rule of doc.rules as { apiGroups: string[]; resources: string[] }[]) {
      for (const group of rule.apiGroups.filter((g) => !builtIn.has(g))) {
        for (const resource of rule.resources) grants.push(`${file}: ${group} ${resource.split('/')[0]}`);
      }
    }
  }
  expect([...new Set(grants)].sort()).toEqual([
    `deploy/rbac/gateway.yaml: ${CRD_GROUP} ${CRD_PLURAL}`,
    `deploy/rbac/operator.yaml: ${CRD_GROUP} ${CRD_PLURAL}`,
  ]);
});

test('the examples are FunctionServices of this apiVersion', () => {
  const docs = yamlDocs('examples');
  expect(docs.length).toBeGreaterThanOrEqual(3);
  for (const { doc } of docs) expect([doc.apiVersion, doc.kind]).toEqual([API_VERSION, KIND]);
});
