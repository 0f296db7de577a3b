/**
 * The parts that start from a bundle instead of dist/'s module tree: one file, built by `npm run build`
 * (cli/build-bundles.ts), loaded when the part runs. The sidecar runs beside every function, so its resident
 * memory is the mesh's per-pod cost; one bundled file loads in less memory than the ~300 modules it
 * replaces. Light (paths and a require): cli/start.ts loads it before anything else.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../common/process/repo-root';

export interface Bundle {
  /** The subcommand that runs it (`fnmesh sidecar`). */
  command: string;
  /** The part's process module (exports `main(env)`), from the repository root: the TypeScript source. */
  entry: string;
  /** The bundle, from the repository root (under dist/, next to the compiled tree). */
  outfile: string;
}

/** What a bundle exports: its entry's `main`. */
export interface BundledPart {
  main(env: Record<string, string | undefined>): Promise<unknown>;
}

export const SIDECAR_BUNDLE: Bundle = {
  command: 'sidecar',
  entry: 'sidecar/main.ts',
  outfile: 'dist/sidecar.bundle.js',
};

export const BUNDLES: readonly Bundle[] = [SIDECAR_BUNDLE];

/**
 * The bundle that `fnmesh <argv>` starts without the command parser: the bare subcommand, configured by env
 * alone (how every starter runs the sidecar: the operator's container args, `fnmesh local`, `fnmesh cluster`).
 * With flags or --help the CLI parses them first and starts the same bundle. Pure.
 */
export function directBundle(argv: readonly string[]): Bundle | undefined {
  return argv.length === 1 ? BUNDLES.find((b) => b.command === argv[0]) : undefined;
}

/** Loads a part from its bundle; a checkout that was not built gets the fix. */
export function loadBundle<T = BundledPart>(bundle: Bundle): T {
  const file = path.join(repoRoot(), bundle.outfile);
  if (!existsSync(file))
    throw new Error(`${bundle.outfile} is missing: run \`npm run build\` in the fnmesh checkout, then try again`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(file) as T;
}
