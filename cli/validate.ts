/**
 * `fnmesh validate`: parses every FunctionService manifest and compiles every rule with the gateway's
 * compiler, so that a manifest that validates here is one the gateway accepts. Errors name file and field.
 * For a valid file it lists each function with the retry policy it resolves to (common/resilience.ts).
 */
import { readFile, stat } from 'node:fs/promises';
import { errorMessage, parseManifests, serviceKey, type FunctionService } from '../common';
import { DEFAULT_FUNCTION } from '../common/names';
import { resolveRetryPolicy, type RetryPolicy } from '../common/resilience';
import { compileRule } from '../gateway/rules';
import { listManifestFiles } from '../common/manifest-files';

export interface ValidationLine {
  ok: boolean;
  text: string;
}

export interface ValidationResult {
  lines: ValidationLine[];
  errors: number;
  services: number;
}

/**
 * A retry policy in words: "retries: calls that never ran, 4 attempts (back-off 10–250 ms); calls that may have
 * run: reset, timeout, 5xx; per-try timeout 500 ms".
 */
export function describeRetryPolicy(policy: RetryPolicy): string {
  if (policy.attempts <= 1) return 'retries: none (1 attempt)';
  const b = policy.backoff;
  const mayHaveRun =
    policy.retryOn.length === 0 ? 'never (at-most-once)' : policy.retryOn.map((r) => String(r)).join(', ');
  const perTry = policy.perTryTimeoutMs === undefined ? '' : `; per-try timeout ${policy.perTryTimeoutMs} ms`;
  return (
    `retries: calls that never ran, ${policy.attempts} attempts (back-off ${b.initialMs}–${b.maxMs} ms); ` +
    `calls that may have run: ${mayHaveRun}${perTry}`
  );
}

/** One line per function of the service (not the `default` rule holder): its resolved retry policy. */
export function functionLines(fs: FunctionService): string[] {
  return fs.spec.functions
    .filter((fn) => fn.name !== DEFAULT_FUNCTION)
    .map((fn) => `    ${serviceKey(fs)} ${fn.name}: ${describeRetryPolicy(resolveRetryPolicy(fs.spec, fn))}`);
}

export async function validatePaths(paths: string[]): Promise<ValidationResult> {
  const lines: ValidationLine[] = [];
  let errors = 0;
  let services = 0;
  const files: string[] = [];
  for (const p of paths) {
    try {
      await stat(p);
    } catch {
      lines.push({ ok: false, text: `${p}: no such file or folder` });
      errors++;
      continue;
    }
    const found = listManifestFiles([p]);
    if (found.length === 0) lines.push({ ok: true, text: `${p}: no .yaml/.yml files (nothing to validate)` });
    files.push(...found);
  }
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      lines.push({ ok: false, text: `${file}: cannot read: ${errorMessage(err)}` });
      errors++;
      continue;
    }
    let parsed;
    try {
      parsed = parseManifests(text, file);
    } catch (err) {
      // ConfigError messages already start with the file and name each field
      lines.push({ ok: false, text: errorMessage(err) });
      errors++;
      continue;
    }
    let fileErrors = 0;
    for (const fs of parsed) {
      for (const fn of fs.spec.functions) {
        if (!fn.rule) continue;
        try {
          compileRule(fn.rule, `${file}: ${serviceKey(fs)}: spec.functions[${fn.name}].rule`, {
            namespace: fs.metadata.namespace,
          });
        } catch (err) {
          lines.push({ ok: false, text: errorMessage(err) });
          fileErrors++;
        }
      }
    }
    errors += fileErrors;
    services += parsed.length;
    if (fileErrors === 0) {
      const names = parsed
        .map((fs) => `${serviceKey(fs)} (${fs.spec.functions.map((f) => f.name).join(', ') || 'no functions'})`)
        .join(', ');
      lines.push({ ok: true, text: `ok  ${file}: ${parsed.length === 0 ? 'no FunctionService documents' : names}` });
      for (const fs of parsed) for (const text of functionLines(fs)) lines.push({ ok: true, text });
    }
  }
  return { lines, errors, services };
}
