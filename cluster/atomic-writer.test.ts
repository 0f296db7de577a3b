import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DATA_DIR_LINK, writeVolumeFiles } from './atomic-writer';

const b = (s: string): Buffer => Buffer.from(s);
let dir: string;

beforeEach(() => {
  dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'fnmesh-atomic-')), 'vol');
});
afterEach(() => rmSync(path.dirname(dir), { recursive: true, force: true }));

describe('writeVolumeFiles', () => {
  test("the kubelet's layout: a hidden version folder, ..data pointing at it, a symlink per top-level entry", () => {
    expect(
      writeVolumeFiles(dir, [
        { path: 'user', content: b('admin'), mode: 0o644 },
        { path: 'conf/app.yaml', content: b('a: 1'), mode: 0o400 },
      ]),
    ).toBe(true);
    const version = readlinkSync(path.join(dir, DATA_DIR_LINK));
    expect(version).toMatch(/^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\./);
    expect(readdirSync(dir).sort()).toEqual([DATA_DIR_LINK, version, 'conf', 'user'].sort());
    expect(readlinkSync(path.join(dir, 'user'))).toBe('..data/user');
    expect(readlinkSync(path.join(dir, 'conf'))).toBe('..data/conf');
    expect(readFileSync(path.join(dir, 'user'), 'utf8')).toBe('admin');
    expect(readFileSync(path.join(dir, 'conf', 'app.yaml'), 'utf8')).toBe('a: 1');
    expect(statSync(path.join(dir, 'conf', 'app.yaml')).mode & 0o777).toBe(0o400);
  });

  test('the same files again: nothing written; a change: a new version swapped in, the old one removed', () => {
    const v1 = [{ path: 'token', content: b('one'), mode: 0o644 }];
    writeVolumeFiles(dir, v1);
    const first = readlinkSync(path.join(dir, DATA_DIR_LINK));
    expect(writeVolumeFiles(dir, v1)).toBe(false);
    expect(readlinkSync(path.join(dir, DATA_DIR_LINK))).toBe(first);

    expect(writeVolumeFiles(dir, [{ path: 'token', content: b('two'), mode: 0o644 }])).toBe(true);
    const second = readlinkSync(path.join(dir, DATA_DIR_LINK));
    expect(second).not.toBe(first);
    expect(readFileSync(path.join(dir, 'token'), 'utf8')).toBe('two');
    expect(readdirSync(dir)).not.toContain(first);
    // a mode change alone is a change too
    expect(writeVolumeFiles(dir, [{ path: 'token', content: b('two'), mode: 0o600 }])).toBe(true);
  });

  test('a key gone from the object: its symlink removed; a new key: its symlink added', () => {
    writeVolumeFiles(dir, [
      { path: 'a', content: b('1'), mode: 0o644 },
      { path: 'b', content: b('2'), mode: 0o644 },
    ]);
    writeVolumeFiles(dir, [
      { path: 'b', content: b('2'), mode: 0o644 },
      { path: 'c', content: b('3'), mode: 0o644 },
    ]);
    const entries = readdirSync(dir).filter((n) => !n.startsWith('..'));
    expect(entries.sort()).toEqual(['b', 'c']);
    expect(lstatSync(path.join(dir, 'c')).isSymbolicLink()).toBe(true);
    expect(readFileSync(path.join(dir, 'c'), 'utf8')).toBe('3');
  });

  test('an empty volume (an optional Secret that is missing) is an empty ..data', () => {
    expect(writeVolumeFiles(dir, [])).toBe(true);
    expect(readdirSync(path.join(dir, DATA_DIR_LINK))).toEqual([]);
    expect(writeVolumeFiles(dir, [])).toBe(false);
  });
});
