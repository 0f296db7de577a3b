/**
 * `fnmesh validate`: parses every FunctionService manifest and compiles every rule with the gateway's
 * compiler, so that a manifest that validates here is one the gateway accepts. Errors name file and field.
 */
import { readFile, stat } from 'node:fs/promises';
import { errorMessage, parseManifests, serviceKey } from '../common';
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
    }
  }
  return { lines, errors, services };
}
