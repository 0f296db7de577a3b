/**
 * helm for the chart tests: the binary scripts/helm-tool.sh built (found with `--print-env`), run on
 * charts/fnmesh, and the rendered manifests parsed.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../../common/process/repo-root';

const run = promisify(execFile);

export const REPO = repoRoot(__dirname);
export const CHART_DIR = path.join(REPO, 'charts', 'fnmesh');
export const CI_VALUES = ['bundled', 'external', 'embedded'].map((m) => path.join(CHART_DIR, 'ci', `${m}-values.yaml`));

let bin: Promise<string> | undefined;

/** The helm binary; fails with the fix when scripts/helm-tool.sh has not built it. */
export function helmBin(): Promise<string> {
  return (bin ??= (async () => {
    const { stdout } = await run('bash', [path.join(REPO, 'scripts', 'helm-tool.sh'), '--print-env']);
    const found = /^HELM_BIN=(.*)$/m.exec(stdout)?.[1];
    if (!found || !existsSync(found))
      throw new Error(`helm is not built (${found ?? stdout.trim()}): run bash scripts/helm-tool.sh once`);
    return found;
  })());
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** helm with these args; `env` replaces the process's (such as a KUBECONFIG for a release on a real cluster). */
export async function helm(args: string[], env?: NodeJS.ProcessEnv): Promise<HelmResult> {
  try {
    const { stdout, stderr } = await run(await helmBin(), args, {
      maxBuffer: 64 * 1024 * 1024,
      ...(env ? { env } : {}),
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  spec?: any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  [key: string]: any;
}

/** `helm template fnmesh charts/fnmesh -n fnmesh` with these values files and --set pairs: its text and objects. */
export async function renderChart(
  options: { valuesFiles?: string[]; set?: string[]; includeCrds?: boolean } = {},
): Promise<{ text: string; objects: K8sObject[] }> {
  const args = ['template', 'fnmesh', CHART_DIR, '--namespace', 'fnmesh'];
  for (const f of options.valuesFiles ?? []) args.push('-f', f);
  for (const s of options.set ?? []) args.push('--set', s);
  if (options.includeCrds) args.push('--include-crds');
  const r = await helm(args);
  if (r.code !== 0) throw new Error(`helm ${args.join(' ')} failed: ${r.stderr}`);
  const objects = parseAllDocuments(r.stdout)
    .map((d) => {
      if (d.errors.length) throw new Error(`helm template rendered invalid YAML: ${d.errors[0]!.message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
  return { text: r.stdout, objects };
}
