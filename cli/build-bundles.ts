/**
 * `npm run build`'s second step (after tsc): writes each bundle of cli/bundles.ts with esbuild.
 *
 *   node dist/cli/build-bundles.js
 *
 * Whitespace-minified only: renaming identifiers (full --minify) made the sidecar's resident memory larger
 * (+1.6 MB: the renamed code is parsed and compiled less lazily), and keeps names in stack traces. A source
 * map is written next to the bundle (`node --enable-source-maps` maps stack traces to the sources).
 * `@dabh/diagnostics` (winston's debug output, shown only with DEBUG=winston:*) is its production build,
 * which the image loads anyway (NODE_ENV=production): its development build pulls colour modules for nothing.
 */
import path from 'node:path';
import { build, type Plugin } from 'esbuild';
import { repoRoot } from '../common/process/repo-root';
import { BUNDLES, type Bundle } from './bundles';

/** Packages replaced in a bundle by a smaller module with the same exports (cli/bundle/, each says why). */
const REPLACED: Record<string, string> = {
  'prom-client': 'cli/bundle/prom-client.ts',
  'readable-stream': 'cli/bundle/readable-stream.ts',
  'readable-stream/lib/_stream_writable.js': 'cli/bundle/readable-stream-writable.ts',
};

/** An esbuild plugin: each import of a name in REPLACED resolves to its replacement. */
function replacePackages(root: string): Plugin {
  const names = Object.keys(REPLACED).map((n) => n.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'));
  return {
    name: 'fnmesh-replace-packages',
    setup(b) {
      b.onResolve({ filter: new RegExp(`^(${names.join('|')})$`) }, (args) => ({
        path: path.join(root, REPLACED[args.path]!),
      }));
    },
  };
}

export async function buildBundle(bundle: Bundle, root = repoRoot()): Promise<void> {
  await build({
    absWorkingDir: root,
    entryPoints: [bundle.entry],
    outfile: path.join(root, bundle.outfile),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minifyWhitespace: true,
    sourcemap: 'linked',
    logLevel: 'warning',
    alias: { '@dabh/diagnostics': '@dabh/diagnostics/node/production.js' },
    plugins: [replacePackages(root)],
  });
}

if (require.main === module) {
  Promise.all(BUNDLES.map((b) => buildBundle(b))).catch((err: unknown) => {
    console.error(`fnmesh build: a bundle failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
