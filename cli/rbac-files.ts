/**
 * Writes the RBAC of common/rbac.ts in its two forms (`npm run generate`): deploy/rbac/{operator,gateway}.yaml,
 * the manifests to `kubectl apply`, and charts/fnmesh/templates/_rbac-rules.tpl, the rule lists the chart's
 * roles include. rbac-files.test.ts fails when a committed file differs from what this renders.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML, { isScalar, isSeq, visit } from 'yaml';
import { DEPLOY_NAMESPACE, PARTS_RBAC, type ExplainedRule, type PartRbac } from '../common/rbac';

const HEADER = (what: string): string =>
  `# GENERATED from common/rbac.ts by cli/rbac-files.ts (\`npm run generate\`); do not edit by hand:\n# ${what}\n`;

/** YAML text of one object, lists of strings in flow style (`[get, list]`). */
function yamlOf(value: unknown): string {
  const doc = new YAML.Document(value);
  visit(doc, {
    Seq(_, node) {
      if (isSeq(node) && node.items.every((i) => isScalar(i))) node.flow = true;
    },
  });
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

function rulesYaml(rules: ExplainedRule[]): string {
  return rules.map(({ why, rule }) => `${wrapComment(why)}${yamlOf([rule])}`).join('');
}

/** `# ` lines of at most ~110 characters. */
function wrapComment(text: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + word.length + 1 > 108) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.map((l) => `# ${l}\n`).join('');
}

const labels = (name: string): Record<string, string> => ({
  'app.kubernetes.io/name': name,
  'app.kubernetes.io/part-of': 'fnmesh',
});

/** deploy/rbac/<part>.yaml: the ServiceAccount, ClusterRole + binding, and the namespace Role when there is one. */
export function deployManifest(part: PartRbac): string {
  const meta = (name: string, namespaced: boolean): Record<string, unknown> => ({
    name,
    ...(namespaced ? { namespace: DEPLOY_NAMESPACE } : {}),
    labels: labels(part.name),
  });
  const subject = [{ kind: 'ServiceAccount', name: part.name, namespace: DEPLOY_NAMESPACE }];
  const docs: string[] = [];
  docs.push(yamlOf({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(part.name, true) }));
  const role = (kind: string, name: string, namespaced: boolean, rules: ExplainedRule[]): string =>
    yamlOf({ apiVersion: 'rbac.authorization.k8s.io/v1', kind, metadata: meta(name, namespaced) }) +
    'rules:\n' +
    indent(rulesYaml(rules), 2);
  const binding = (kind: string, roleKind: string, name: string, namespaced: boolean): string =>
    yamlOf({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind,
      metadata: meta(name, namespaced),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name },
      subjects: subject,
    });
  docs.push(role('ClusterRole', part.name, false, part.clusterRules));
  docs.push(binding('ClusterRoleBinding', 'ClusterRole', part.name, false));
  if (part.namespaceRules) {
    const name = `${part.name}-${part.namespaceRules.roleSuffix}`;
    docs.push(role('Role', name, true, part.namespaceRules.rules));
    docs.push(binding('RoleBinding', 'Role', name, true));
  }
  return (
    HEADER('cli/rbac-files.test.ts fails when this file and common/rbac.ts disagree.') +
    part.summary.map((l) => `# ${l}\n`).join('') +
    docs.join('---\n')
  );
}

function indent(text: string, n: number): string {
  const pad = ' '.repeat(n);
  return text
    .split('\n')
    .map((l) => (l ? pad + l : l))
    .join('\n');
}

/** The chart's named templates: `fnmesh.rbac.<part>.clusterRules` and `fnmesh.rbac.<part>.namespaceRules`. */
export function chartRulesTemplate(): string {
  const defines: string[] = [];
  for (const [key, part] of Object.entries(PARTS_RBAC)) {
    defines.push(`{{- define "fnmesh.rbac.${key}.clusterRules" -}}\n${rulesYaml(part.clusterRules)}{{- end -}}\n`);
    if (part.namespaceRules)
      defines.push(
        `{{- define "fnmesh.rbac.${key}.namespaceRules" -}}\n${rulesYaml(part.namespaceRules.rules)}{{- end -}}\n`,
      );
  }
  return `{{/*\n${HEADER('cli/rbac-files.test.ts fails when it is stale.')}*/}}\n` + defines.join('\n');
}

/** Every generated file, relative to the checkout's root, with its content. */
export function rbacFiles(): Record<string, string> {
  return {
    'deploy/rbac/operator.yaml': deployManifest(PARTS_RBAC.operator),
    'deploy/rbac/gateway.yaml': deployManifest(PARTS_RBAC.gateway),
    'charts/fnmesh/templates/_rbac-rules.tpl': chartRulesTemplate(),
  };
}

if (require.main === module) {
  // dist/cli/ when built: the checkout's root is two folders up
  const root = path.join(__dirname, '..', '..');
  for (const [file, text] of Object.entries(rbacFiles())) {
    const full = path.join(root, file);
    let old = '';
    try {
      old = readFileSync(full, 'utf8');
    } catch {
      // a new file
    }
    if (old !== text) {
      writeFileSync(full, text);
      console.log(`wrote ${file}`);
    }
  }
}
