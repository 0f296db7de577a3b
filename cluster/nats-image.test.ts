import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { containerArgv } from './dockerfile';
import { findImage, mapImagePath, resolveImage, type LocalImage } from './images';
import {
  NATS_DEFAULT_CONFIG,
  addNatsImage,
  natsImage,
  natsVariant,
  parseNatsTag,
  versionMatches,
  writeNatsImage,
} from './nats-image';

const opts = { dir: '/cache/nats', version: '2.15.3', hostPath: '/usr/bin:/bin' };

describe('parseNatsTag', () => {
  test.each([
    [undefined, { flavour: 'scratch' }],
    ['latest', { flavour: 'scratch' }],
    ['2.15.3', { flavour: 'scratch', version: '2.15.3' }],
    ['2.15', { flavour: 'scratch', version: '2.15' }],
    ['2', { flavour: 'scratch', version: '2' }],
    ['2.15.3-scratch', { flavour: 'scratch', version: '2.15.3' }],
    ['2.15.3-linux', { flavour: 'scratch', version: '2.15.3' }],
    ['scratch', { flavour: 'scratch' }],
    ['2.15.3-alpine', { flavour: 'alpine', version: '2.15.3' }],
    ['2.15.3-alpine3.22', { flavour: 'alpine', version: '2.15.3' }],
    ['2-alpine', { flavour: 'alpine', version: '2' }],
    ['alpine', { flavour: 'alpine' }],
    ['alpine3.22', { flavour: 'alpine' }],
  ])('%s → %j', (tag, want) => {
    expect(parseNatsTag(tag)).toEqual(want);
  });

  test('a Windows tag is refused naming the Linux one; an unknown tag names the forms it knows', () => {
    expect(parseNatsTag('2.15.3-nanoserver-ltsc2022')).toEqual({
      problem:
        'nats:2.15.3-nanoserver-ltsc2022 is a Windows image; fnmesh cluster runs Linux processes: use nats:2.15.3',
    });
    expect(parseNatsTag('windowsservercore')).toMatchObject({ problem: expect.stringContaining('use nats:latest') });
    for (const t of ['2.15.3-RC.1', 'edge', '2.15.3-debian', 'v2.15.3'])
      expect(parseNatsTag(t)).toMatchObject({
        problem: expect.stringContaining('(VERSION, VERSION-alpine, VERSION-scratch, latest, alpine)'),
      });
  });
});

describe('versionMatches', () => {
  test.each([
    ['2', true],
    ['2.15', true],
    ['2.15.3', true],
    ['2.15.2', false],
    ['2.10', false],
    ['3', false],
    ['2.15.30', false],
  ])('%s against 2.15.3: %s', (v, want) => {
    expect(versionMatches(v, '2.15.3')).toBe(want);
  });
});

describe('natsVariant', () => {
  test('another version: the version it has, the built one, and the two fixes', () => {
    expect(natsVariant('2.10.0', '2.15.3')).toEqual({
      problem:
        'image nats:2.10.0 is nats-server 2.10.0, but fnmesh cluster runs the official nats image with the nats-server it builds, v2.15.3 (common/nats-server-version.ts): use nats:2.15.3, or set NATS_SERVER_VERSION there and run bash scripts/nats-server-tool.sh',
    });
    expect(natsVariant('2.14-alpine', '2.15.3')).toMatchObject({
      problem: expect.stringContaining('use nats:2.15.3-alpine,'),
    });
  });

  test('the built version, a prefix of it, or a floating tag run', () => {
    expect(natsVariant('2.15.3-alpine', '2.15.3')).toEqual({ flavour: 'alpine' });
    expect(natsVariant('2', '2.15.3')).toEqual({ flavour: 'scratch' });
    expect(natsVariant(undefined, '2.15.3')).toEqual({ flavour: 'scratch' });
  });
});

describe('natsImage through resolveImage (every spelling of the repository, tags, digests)', () => {
  const images = new Map<string, LocalImage>([['nats', natsImage(opts)]]);
  const run = (ref: string): LocalImage => {
    const got = resolveImage(images, ref);
    if (!got || 'problem' in got) throw new Error(`${ref}: ${JSON.stringify(got)}`);
    return got;
  };

  test.each([
    'nats',
    'nats:2.15.3',
    'docker.io/library/nats:2.15.3',
    'docker.io/nats:2.15',
    'library/nats:latest',
    'index.docker.io/library/nats:2',
    'nats@sha256:0123456789abcdef',
    'nats:2.15.3@sha256:0123456789abcdef',
  ])('%s: the scratch flavour, /nats-server --config nats-server.conf in its folder', (ref) => {
    const image = run(ref);
    const argv = containerArgv(image.config, undefined, undefined).map((a) => mapImagePath(image, a));
    expect(argv).toEqual(['/cache/nats/scratch/nats-server', '--config', 'nats-server.conf']);
    expect(image.root).toBe('/cache/nats/scratch'); // the working folder: the relative config resolves there
    expect(image.config.env.PATH).toBe('/cache/nats/scratch:/usr/bin:/bin');
  });

  test('the alpine flavour: its entrypoint script, then nats-server --config /etc/nats/nats-server.conf', () => {
    const image = run('nats:2.15.3-alpine3.22');
    const argv = containerArgv(image.config, undefined, undefined).map((a) => mapImagePath(image, a));
    expect(argv).toEqual([
      'docker-entrypoint.sh',
      'nats-server',
      '--config',
      '/cache/nats/alpine/etc/nats/nats-server.conf',
    ]);
    expect(image.config.env.PATH).toBe('/cache/nats/alpine/usr/local/bin:/usr/bin:/bin');
    // a chart's own args over the image's CMD (Kubernetes' rule), absolute image paths mapped
    const chart = containerArgv(image.config, ['nats-server'], ['--config', '/etc/nats-config/nats.conf']);
    expect(chart.map((a) => mapImagePath(image, a))).toEqual(['nats-server', '--config', '/etc/nats-config/nats.conf']);
    expect(mapImagePath(image, '/usr/local/bin/nats-server')).toBe('/cache/nats/alpine/usr/local/bin/nats-server');
  });

  test('another version is a problem; another repository is not this image', () => {
    expect(resolveImage(images, 'docker.io/library/nats:2.10.0')).toMatchObject({
      problem: expect.stringContaining('is nats-server 2.10.0'),
    });
    expect(resolveImage(images, 'ghcr.io/nats-io/nats:2.15.3')).toBeUndefined();
    expect(resolveImage(images, 'natsio/nats-box')).toBeUndefined();
  });
});

describe('writeNatsImage and addNatsImage', () => {
  let dir = '';
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'nats-image-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('each flavour: the binary linked, the default config, the executable entrypoint', () => {
    writeNatsImage(path.join(dir, 'img'), '/opt/nats-server');
    expect(readlinkSync(path.join(dir, 'img/scratch/nats-server'))).toBe('/opt/nats-server');
    expect(readlinkSync(path.join(dir, 'img/alpine/usr/local/bin/nats-server'))).toBe('/opt/nats-server');
    expect(readFileSync(path.join(dir, 'img/scratch/nats-server.conf'), 'utf8')).toBe(NATS_DEFAULT_CONFIG);
    expect(readFileSync(path.join(dir, 'img/alpine/etc/nats/nats-server.conf'), 'utf8')).toBe(NATS_DEFAULT_CONFIG);
    expect(statSync(path.join(dir, 'img/alpine/usr/local/bin/docker-entrypoint.sh')).mode & 0o111).toBe(0o111);
    writeNatsImage(path.join(dir, 'img'), '/opt/other'); // written again: replaced
    expect(readlinkSync(path.join(dir, 'img/scratch/nats-server'))).toBe('/opt/other');
  });

  test('the entrypoint: flags (or nothing) run nats-server with them; a command runs as given', () => {
    const fake = path.join(dir, 'fake-nats-server');
    writeFileSync(fake, '#!/bin/sh\necho "nats-server[$*]"\n', { mode: 0o755 });
    writeNatsImage(path.join(dir, 'img'), fake);
    const script = path.join(dir, 'img/alpine/usr/local/bin/docker-entrypoint.sh');
    const env = { PATH: `${path.join(dir, 'img/alpine/usr/local/bin')}:/usr/bin:/bin` };
    const run = (...args: string[]): string => spawnSync(script, args, { encoding: 'utf8', env }).stdout;
    expect(run('--version', '-m', '8222')).toBe('nats-server[--version -m 8222]\n');
    expect(run()).toBe('nats-server[]\n');
    expect(run('echo', 'hello')).toBe('hello\n');
  });

  test('a --image nats=FOLDER given by the user is kept', () => {
    const own: LocalImage = {
      repository: 'docker.io/library/nats',
      root: '/mine',
      config: { workdir: '/', env: {}, entrypoint: ['x'], cmd: [] },
    };
    const images = new Map([[own.repository, own]]);
    addNatsImage(images, { ...opts, dir: path.join(dir, 'img'), binary: '/opt/nats-server' });
    expect(findImage(images, 'nats:2.10.0')).toBe(own);
    expect(existsSync(path.join(dir, 'img'))).toBe(false);
    const fresh = new Map<string, LocalImage>();
    addNatsImage(fresh, { ...opts, dir: path.join(dir, 'img'), binary: '/opt/nats-server' });
    expect(findImage(fresh, 'nats:2.15.3')?.root).toBe(path.join(dir, 'img', 'scratch'));
  });
});
