/**
 * `fnmesh cluster --helm`: the chart installed with the real helm (`helm install fnmesh charts/fnmesh -n
 * fnmesh --create-namespace --wait`) instead of the operator and the gateway as processes of this machine.
 * The decisions (helm's argv, the values that fit a one-node local cluster) are pure; the shell finds the
 * helm that scripts/helm-tool.sh built (its `--print-env` holds the one definition of the cache path) and runs
 * it with the cluster's admin kubeconfig.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ConfigError } from '../common/errors';
import { repoRoot } from '../common/process/repo-root';

export const HELM_TOOL = path.join(repoRoot(), 'scripts', 'helm-tool.sh');
export const RELEASE = 'fnmesh';
export const RELEASE_NAMESPACE = 'fnmesh';
/** The Secret `fnmesh cluster --helm` writes the gateway's HS256 secrets to (the name the chart's ci values use). */
export const JWT_SECRET_NAME = 'fnmesh-jwt';
export const JWT_SECRET_KEY = 'jwt-secret';
/** How long `helm install --wait` may take (every pod Ready). */
export const INSTALL_TIMEOUT = '5m';

/**
 * The values that fit `fnmesh cluster`, given before the user's: the gateway Service as a NodePort (its node
 * port answers on this machine's 127.0.0.1), and the HS256 secrets from the Secret the cluster writes (so a
 * signed-in curl can be printed). Pure.
 */
export function localValues(): string[] {
  return ['gateway.service.type=NodePort', `gateway.jwt.existingSecret=${JWT_SECRET_NAME}`];
}

/** helm's argv for the install: local values, then the user's files and `--set`, which win. Pure. */
export function installArgs(chartDir: string, valuesFiles: readonly string[], set: string | undefined): string[] {
  const args = ['install', RELEASE, chartDir, '-n', RELEASE_NAMESPACE, '--create-namespace', '--wait'];
  args.push('--timeout', INSTALL_TIMEOUT);
  for (const v of localValues()) args.push('--set', v);
  for (const f of valuesFiles) args.push('-f', f);
  if (set) args.push('--set', set);
  return args;
}

/** The helm binary; throws naming the fix when it is not built. */
export async function helmBinary(): Promise<string> {
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)('bash', [HELM_TOOL, '--print-env']));
  } catch (err) {
    throw new ConfigError(`bash scripts/helm-tool.sh --print-env failed (${(err as Error).message})`);
  }
  const bin = /^HELM_BIN=(.+)$/m.exec(stdout)?.[1] ?? '';
  if (!bin || !existsSync(bin))
    throw new ConfigError(
      `fnmesh cluster --helm needs helm v4, which is not built (${bin || stdout.trim()}): run \`bash scripts/helm-tool.sh\` once (about two minutes; needs Go), then start again`,
    );
  return bin;
}

/** Runs helm with this kubeconfig, its output a line at a time; resolves with its exit code. */
export function runHelm(
  bin: string,
  args: string[],
  kubeconfig: string,
  line: (text: string) => void,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      env: { ...process.env, KUBECONFIG: kubeconfig },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let pending = '';
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) if (l.trim()) line(l);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) => {
      if (pending.trim()) line(pending);
      resolve({ code: code ?? 1, output });
    });
  });
}
