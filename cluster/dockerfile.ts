/**
 * What a container runtime takes from an image's Dockerfile to start a container: the final stage's
 * WORKDIR, ENV, ENTRYPOINT and CMD. Pure. Only the exec (JSON array) form of ENTRYPOINT and CMD is read:
 * the shell form runs through `/bin/sh -c`, which `fnmesh cluster` reproduces as such.
 */

export interface ImageConfig {
  workdir: string;
  env: Record<string, string>;
  entrypoint: string[];
  cmd: string[];
}

/**
 * Joins continuation lines and drops comments and blank lines. As in Docker, a comment or blank line inside a
 * continued instruction is dropped without ending it.
 */
function logicalLines(text: string): string[] {
  const out: string[] = [];
  let current = '';
  let continuing = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      current += line.slice(0, -1) + ' ';
      continuing = true;
      continue;
    }
    out.push((current + line).trim());
    current = '';
    continuing = false;
  }
  if (continuing && current.trim()) out.push(current.trim());
  return out;
}

function execOrShell(value: string, instruction: string): string[] {
  const v = value.trim();
  if (v.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      throw new Error(`${instruction} ${v} is not a JSON array of strings: write it as ["executable", "arg"]`);
    }
    if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) {
      throw new Error(`${instruction} ${v} is not a JSON array of strings: write it as ["executable", "arg"]`);
    }
    return parsed as string[];
  }
  return ['/bin/sh', '-c', v];
}

/** `KEY=value KEY2="v 2"` or the legacy `KEY value`. */
function parseEnv(value: string): [string, string][] {
  const v = value.trim();
  const firstSpace = v.search(/\s/);
  const firstEq = v.indexOf('=');
  if (firstEq < 0 || (firstSpace >= 0 && firstSpace < firstEq)) {
    if (firstSpace < 0) return [];
    return [[v.slice(0, firstSpace), v.slice(firstSpace).trim()]];
  }
  const pairs: [string, string][] = [];
  // A value is quoted ("..." with escapes, '...' literal) or bare, where a backslash escapes the next
  // character (`A=hello\ world` is "hello world").
  const re = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|(?:\\.|\S)*)/g;
  for (let m = re.exec(v); m; m = re.exec(v)) {
    let val = m[2]!;
    if (val.startsWith('"')) val = val.slice(1, -1).replace(/\\(.)/g, '$1');
    else if (val.startsWith("'")) val = val.slice(1, -1);
    else val = val.replace(/\\(.)/g, '$1');
    pairs.push([m[1]!, val]);
  }
  return pairs;
}

/** The final stage's runtime settings; throws on an ENTRYPOINT/CMD it cannot read. */
export function readImageConfig(dockerfile: string): ImageConfig {
  let config: ImageConfig = { workdir: '/', env: {}, entrypoint: [], cmd: [] };
  for (const line of logicalLines(dockerfile)) {
    const m = /^(\w+)\s+([\s\S]*)$/.exec(line);
    if (!m) continue;
    const instruction = m[1]!.toUpperCase();
    const value = m[2]!;
    switch (instruction) {
      case 'FROM':
        // A new stage starts from its base image, whose settings are unknown here: start empty.
        config = { workdir: '/', env: {}, entrypoint: [], cmd: [] };
        break;
      case 'WORKDIR': {
        const dir = value.trim();
        config.workdir = dir.startsWith('/') ? dir : `${config.workdir.replace(/\/$/, '')}/${dir}`;
        break;
      }
      case 'ENV':
        for (const [k, v] of parseEnv(value)) config.env[k] = v;
        break;
      case 'ENTRYPOINT':
        config.entrypoint = execOrShell(value, 'ENTRYPOINT');
        // Docker: setting ENTRYPOINT clears a CMD inherited from before it.
        config.cmd = [];
        break;
      case 'CMD':
        config.cmd = execOrShell(value, 'CMD');
        break;
      default:
        break;
    }
  }
  return config;
}

/**
 * The argv a container runs, by Kubernetes' rules: `command` replaces the image's ENTRYPOINT (and then the
 * image's CMD is not used), `args` replaces its CMD.
 */
export function containerArgv(image: ImageConfig, command: string[] | undefined, args: string[] | undefined): string[] {
  if (command && command.length > 0) return [...command, ...(args ?? [])];
  return [...image.entrypoint, ...(args ?? image.cmd)];
}
