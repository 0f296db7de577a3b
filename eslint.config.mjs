import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Folder boundaries. Every part may import `common/` (and its subfolders); beyond that, only the public
 * entry points listed here, and only where the graph below allows. No part imports another's internals.
 */
const ENTRIES = {
  // index, main (the process), config (its loader) and settings (its settings table, which the CLI offers
  // as flags); the gateway's rule compiler (for `fnmesh validate`) and its Kubernetes rule source (loaded
  // only when used, so not in the index)
  gateway: ['', 'main', 'config', 'settings', 'rules', 'kube-rule-source'],
  sidecar: ['', 'main', 'config', 'settings'],
  operator: ['', 'main', 'config', 'settings'],
  broker: ['', 'settings'],
  // the local mesh's default CORS origins are a setting the CLI documents
  local: ['', 'mesh', 'config', 'settings', 'dev-origins'],
  // nats-server-tool: where the chart's nats-server is built (test/chart-nats.test.ts runs it)
  cluster: ['cluster', 'config', 'settings', 'control-plane', 'nats-server-tool'],
  cli: ['main'],
  sdk: [''],
  crds: ['generate'],
  // the browser test serves the example page
  examples: ['web/serve'],
  // the fault bench runs the fault suites' fixture function and reads its execution log
  test: ['fixtures/*'],
  // the benchmarks are programs, not a library: nothing imports them
  bench: [],
};
const PARTS = ['common', ...Object.keys(ENTRIES)];
const ALL_ENTRIES = Object.keys(ENTRIES).filter((p) => p !== 'bench');

/** Which other parts' entry points each part's code may import (`common/` is open to all but itself). */
const GRAPH = {
  common: [],
  broker: [],
  sdk: [],
  gateway: ['broker'],
  sidecar: [],
  operator: [],
  local: ['gateway'],
  // fnmesh cluster runs a gateway and passes its settings on
  cluster: ['gateway'],
  cli: ['gateway', 'sidecar', 'operator', 'broker', 'local', 'cluster'],
  crds: [],
  examples: ['sdk'],
  bench: ALL_ENTRIES,
  test: ALL_ENTRIES,
};

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A pattern refusing every import of `part` from outside it except its entry points in `entries`. */
function refuse(part, entries, from) {
  // `helpers/*`: anything under helpers/.
  const named = entries
    .filter((e) => e !== '')
    .map((e) => (e.endsWith('/*') ? `${escape(e.slice(0, -2))}/.+` : escape(e)));
  const allowed = [
    entries.includes('') ? `${part}(?:/index)?` : null,
    named.length ? `${part}/(?:${named.join('|')})` : null,
  ]
    .filter(Boolean)
    .join('|');
  const up = '(?:\\.\\./)+';
  return {
    regex: allowed ? `^(?!${up}(?:${allowed})$)${up}${part}(?:/.*)?$` : `^${up}${part}(?:/.*)?$`,
    message: allowed
      ? `${from}/ may import ${part}/ only through its entry points (${entries.map((e) => `${part}/${e}`.replace(/\/$/, '')).join(', ')})`
      : `${from}/ may not import ${part}/ (see the folder boundaries in eslint.config.mjs; move shared code to common/)`,
  };
}

/** The no-restricted-imports options for code in `part` that may import the entry points of `open`. */
function boundaries(part, open, { helpers = false } = {}) {
  const patterns = [];
  for (const other of PARTS) {
    if (other === part) continue;
    if (other === 'common') continue;
    const entries = open.includes(other) ? ENTRIES[other] : [];
    patterns.push(refuse(other, other === 'test' && helpers ? ['helpers/*'] : entries, part));
  }
  return ['error', { patterns }];
}

const boundaryBlocks = Object.entries(GRAPH).flatMap(([part, open]) => [
  { files: [`${part}/**/*.ts`], rules: { 'no-restricted-imports': boundaries(part, open) } },
  // A unit test may also use the test helpers and any part's entry points (contract tests across parts).
  {
    files: [`${part}/**/*.test.ts`],
    rules: { 'no-restricted-imports': boundaries(part, ALL_ENTRIES, { helpers: true }) },
  },
]);

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-console': ['error', { allow: ['error'] }],
    },
  },
  { files: ['cli/**', 'bench/**', 'local/**', 'cluster/**', 'examples/**'], rules: { 'no-console': 'off' } },
  ...boundaryBlocks,
);
