/** ManifestFileSource on a real filesystem with real chokidar watching: loads, follows, keeps last good. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, serviceKey, type FunctionService, type Logger } from '../common';
import { ManifestFileSource, SOURCE_FILE_ANNOTATION } from '../common/manifest-source';
import { waitFor } from './helpers/wait';

const manifest = (name: string, replicas = 1): string => `apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: ${name} }
spec:
  replicas: ${replicas}
  functions: [{ name: f, rule: { rule: allow } }]
`;

function recordingLogger(lines: { level: string; message: string; meta?: Record<string, unknown> }[]): Logger {
  const log = (level: string) => (message: string, meta?: Record<string, unknown>) => {
    lines.push({ level, message, ...(meta ? { meta } : {}) });
  };
  const l: Logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error'), child: () => l };
  return l;
}

describe('ManifestFileSource', () => {
  let dir: string;
  let source: ManifestFileSource | undefined;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-src-'));
  });
  afterEach(async () => {
    await source?.stop();
    source = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  function keys(set: FunctionService[] | undefined): string[] {
    return (set ?? []).map(serviceKey).sort();
  }

  it('rejects a path that does not exist with a ConfigError', async () => {
    source = new ManifestFileSource([path.join(dir, 'missing.yaml')]);
    await expect(source.start(() => undefined)).rejects.toThrow(ConfigError);
    await expect(new ManifestFileSource([path.join(dir, 'missing')]).start(() => undefined)).rejects.toThrow(
      /does not exist/,
    );
  });

  it('loads directories (recursively) and files, then follows adds, edits, bad edits and deletes', async () => {
    const lines: { level: string; message: string; meta?: Record<string, unknown> }[] = [];
    mkdirSync(path.join(dir, 'sub'));
    writeFileSync(path.join(dir, 'a.yaml'), manifest('a'));
    writeFileSync(path.join(dir, 'sub', 'b.yml'), manifest('b'));
    writeFileSync(path.join(dir, 'notes.txt'), 'not a manifest');
    const extra = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-src-file-'));
    const single = path.join(extra, 'c.yaml');
    writeFileSync(single, manifest('c'));
    let latest: FunctionService[] | undefined;
    let emits = 0;
    source = new ManifestFileSource([dir, single], { logger: recordingLogger(lines), debounceMs: 20 });
    await source.start((s) => {
      latest = s;
      emits++;
    });
    expect(emits).toBe(1);
    expect(keys(latest)).toEqual(['default/a', 'default/b', 'default/c']);
    expect(latest!.find((s) => s.metadata.name === 'a')!.metadata.annotations?.[SOURCE_FILE_ANNOTATION]).toBe(
      path.join(dir, 'a.yaml'),
    );

    // edit: replica count followed
    writeFileSync(path.join(dir, 'a.yaml'), manifest('a', 3));
    await waitFor(() => latest?.find((s) => s.metadata.name === 'a')?.spec.replicas === 3, { what: 'the edit' });

    // a bad edit keeps the last good contents and logs an error naming the file and the field
    writeFileSync(path.join(dir, 'a.yaml'), manifest('a', 3).replace('replicas: 3', 'replicas: lots'));
    await waitFor(() => lines.some((l) => l.level === 'error' && String(l.meta?.error).includes('spec.replicas')), {
      what: 'the error log',
    });
    const err = lines.find((l) => l.level === 'error')!;
    expect(String(err.meta?.error)).toContain(path.join(dir, 'a.yaml'));
    expect(err.message).toContain('last good');
    expect(latest!.find((s) => s.metadata.name === 'a')?.spec.replicas).toBe(3);

    // a new file in a new subdirectory
    mkdirSync(path.join(dir, 'new'));
    writeFileSync(path.join(dir, 'new', 'd.yaml'), manifest('d'));
    await waitFor(() => keys(latest).includes('default/d'), { what: 'the new file' });

    // the same namespace/name in a second file: the later one is an error, the first stays
    writeFileSync(path.join(dir, 'dup.yaml'), manifest('b', 7));
    await waitFor(() => lines.some((l) => l.message.includes('two manifest files')), { what: 'the duplicate error' });
    expect(latest!.find((s) => s.metadata.name === 'b')?.spec.replicas).toBe(1);

    // deletes remove their services
    rmSync(path.join(dir, 'sub', 'b.yml'));
    rmSync(path.join(dir, 'dup.yaml'));
    rmSync(single);
    await waitFor(() => !keys(latest).includes('default/c') && !keys(latest).includes('default/b'), {
      what: 'the deletes',
    });
    expect(keys(latest)).toEqual(['default/a', 'default/d']);
    rmSync(extra, { recursive: true, force: true });
  }, 30_000);
});
