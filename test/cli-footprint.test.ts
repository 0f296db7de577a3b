/**
 * What `fnmesh <part>` loads before its part starts: the CLI imports every part's settings table, so a
 * table that reaches a barrel or a heavy module puts it into every process. The sidecar runs beside every
 * function, so its memory is the mesh's per-pod cost: a settings table importing `../common` once added
 * 12 MB (winston, zod, yaml, prom-client, undici's callers) to the sidecar's idle resident memory.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'bin', 'fnmesh.js');

/** The npm packages a process has loaded when `fnmesh <args>` exits (here: after printing its help). */
function packagesLoaded(args: string[]): string[] {
  const hook = path.join(os.tmpdir(), `fnmesh-footprint-${process.pid}.js`);
  writeFileSync(
    hook,
    `process.on('exit', () => {
      const names = new Set();
      for (const file of Object.keys(require.cache)) {
        const i = file.lastIndexOf('node_modules/');
        if (i < 0) continue;
        const parts = file.slice(i + 'node_modules/'.length).split('/');
        names.add(parts[0].startsWith('@') ? parts[0] + '/' + parts[1] : parts[0]);
      }
      process.stderr.write('\\nLOADED ' + JSON.stringify([...names].sort()) + '\\n');
    });`,
  );
  let r: SpawnSyncReturns<string>;
  try {
    r = spawnSync(process.execPath, ['--require', hook, cli, ...args], { encoding: 'utf8', cwd: root });
  } finally {
    rmSync(hook, { force: true });
  }
  const line = r.stderr.split('\n').find((l) => l.startsWith('LOADED '));
  if (!line) throw new Error(`fnmesh ${args.join(' ')} printed no module list: ${r.stderr}`);
  return JSON.parse(line.slice('LOADED '.length)) as string[];
}

describe('the CLI loads only its command parser and the settings tables before a part starts', () => {
  it.each(['sidecar', 'gateway', 'operator', 'broker'])('fnmesh %s --help', (part) => {
    const loaded = packagesLoaded([part, '--help']);
    expect(loaded).toContain('commander');
    for (const heavy of ['winston', 'zod', 'yaml', 'prom-client', 'undici', 'express', '@nats-io/transport-node'])
      expect(loaded).not.toContain(heavy);
  });
});

describe('a bare `fnmesh sidecar` (how every starter runs it) starts its bundle', () => {
  it('loads no npm package and not the command parser: dist/sidecar.bundle.js holds what it uses', () => {
    // no FNMESH_SERVICE: the sidecar stops at its settings, after the bundle has loaded
    expect(packagesLoaded(['sidecar'])).toEqual([]);
  });
});
