import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { containerArgv } from './dockerfile';
import {
  BUILT_IN_IMAGES,
  findImage,
  canonicalRepository,
  imageRepository,
  parseImageReference,
  resolveImage,
  loadImages,
  mapImagePath,
  parseImageFlag,
  type LocalImage,
} from './images';

const repoRoot = path.resolve(__dirname, '..');

function localImage(workdir: string, root = '/home/me/hello'): LocalImage {
  return {
    repository: 'ghcr.io/me/hello',
    root,
    dockerfile: path.join(root, 'Dockerfile'),
    config: { workdir, env: {}, entrypoint: [], cmd: [] },
  };
}

describe('imageRepository', () => {
  test.each([
    ['nginx', 'nginx'],
    ['nginx:1.27', 'nginx'],
    ['ghcr.io/fnmesh/fnmesh:0.1.0', 'ghcr.io/fnmesh/fnmesh'],
    ['ghcr.io/fnmesh/fnmesh', 'ghcr.io/fnmesh/fnmesh'],
    ['ghcr.io/fnmesh/fnmesh@sha256:0123abcd', 'ghcr.io/fnmesh/fnmesh'],
    ['ghcr.io/fnmesh/fnmesh:0.1.0@sha256:0123abcd', 'ghcr.io/fnmesh/fnmesh'],
    ['localhost:5000/x:1', 'localhost:5000/x'],
    ['localhost:5000/x', 'localhost:5000/x'],
    ['localhost:5000/team/x@sha256:ff', 'localhost:5000/team/x'],
  ])('%s → %s', (ref, repository) => {
    expect(imageRepository(ref)).toBe(repository);
  });
});

describe('parseImageReference', () => {
  test.each([
    ['nats', { repository: 'nats' }],
    ['nats:2.15.3', { repository: 'nats', tag: '2.15.3' }],
    ['nats@sha256:ab', { repository: 'nats', digest: 'sha256:ab' }],
    ['nats:2.15.3-alpine@sha256:ab', { repository: 'nats', tag: '2.15.3-alpine', digest: 'sha256:ab' }],
    ['localhost:5000/x', { repository: 'localhost:5000/x' }],
    ['localhost:5000/x:1', { repository: 'localhost:5000/x', tag: '1' }],
  ])('%s → %j', (ref, parts) => {
    expect(parseImageReference(ref)).toEqual(parts);
  });
});

describe('canonicalRepository', () => {
  test.each([
    ['nats', 'docker.io/library/nats'],
    ['library/nats', 'docker.io/library/nats'],
    ['docker.io/nats', 'docker.io/library/nats'],
    ['index.docker.io/library/nats', 'docker.io/library/nats'],
    ['natsio/nats-box', 'docker.io/natsio/nats-box'],
    ['ghcr.io/fnmesh/fnmesh', 'ghcr.io/fnmesh/fnmesh'],
    ['localhost/x', 'localhost/x'],
    ['localhost:5000/x', 'localhost:5000/x'],
  ])('%s → %s', (repository, canonical) => {
    expect(canonicalRepository(repository)).toBe(canonical);
  });
});

describe('resolveImage', () => {
  const plain = localImage('/app');
  test('an image without variants runs every tag; an unknown one is undefined', () => {
    const images = new Map([[plain.repository, plain]]);
    expect(resolveImage(images, 'ghcr.io/me/hello:any')).toBe(plain);
    expect(resolveImage(images, 'ghcr.io/me/other:1')).toBeUndefined();
  });
  test("an image with variants is asked with the reference's tag and digest", () => {
    const seen: Array<[string | undefined, string | undefined]> = [];
    const image: LocalImage = {
      ...plain,
      repository: 'docker.io/library/thing',
      variant: (tag, digest) => {
        seen.push([tag, digest]);
        return tag === 'bad' ? { problem: 'no' } : plain;
      },
    };
    const images = new Map([[image.repository, image]]);
    expect(resolveImage(images, 'thing:bad')).toEqual({ problem: 'no' });
    expect(resolveImage(images, 'library/thing:1@sha256:ff')).toBe(plain);
    expect(seen).toEqual([
      ['bad', undefined],
      ['1', 'sha256:ff'],
    ]);
  });
});

describe('parseImageFlag', () => {
  test('REPOSITORY=FOLDER: the folder resolved against cwd, its Dockerfile inside, the tag dropped', () => {
    expect(parseImageFlag('ghcr.io/me/hello:1.2=./hello', '/work/project')).toEqual({
      repository: 'ghcr.io/me/hello',
      root: '/work/project/hello',
      dockerfile: '/work/project/hello/Dockerfile',
    });
  });

  test('an absolute folder stays; a registry port is kept; spaces around the parts are trimmed', () => {
    expect(parseImageFlag(' localhost:5000/x:1 = /srv/x ', '/elsewhere')).toEqual({
      repository: 'localhost:5000/x',
      root: '/srv/x',
      dockerfile: '/srv/x/Dockerfile',
    });
  });

  test('the folder may itself contain "="', () => {
    expect(parseImageFlag('a/b=dir=1', '/w')).toMatchObject({ repository: 'a/b', root: '/w/dir=1' });
  });

  test.each(['ghcr.io/me/hello', '=./hello', 'ghcr.io/me/hello=', 'ghcr.io/me/hello=  ', ''])(
    '"%s" is rejected with the expected form and an example',
    (value) => {
      expect(() => parseImageFlag(value, '/w')).toThrow(
        `--image "${value}" is not valid: write IMAGE=FOLDER, for example ghcr.io/me/hello=./hello (FOLDER holds its Dockerfile)`,
      );
    },
  );
});

describe('loadImages', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-images-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('reads each Dockerfile; dockerfile and root are resolved against the given root', () => {
    mkdirSync(path.join(dir, 'hello'));
    writeFileSync(
      path.join(dir, 'hello', 'Dockerfile'),
      'FROM node:20\nWORKDIR /app\nENV PORT=8080\nCMD ["node", "index.js"]\n',
    );
    const images = loadImages(dir, [{ repository: 'ghcr.io/me/hello', dockerfile: 'hello/Dockerfile', root: 'hello' }]);
    expect([...images.keys()]).toEqual(['ghcr.io/me/hello']);
    expect(images.get('ghcr.io/me/hello')).toEqual({
      repository: 'ghcr.io/me/hello',
      root: path.join(dir, 'hello'),
      dockerfile: path.join(dir, 'hello', 'Dockerfile'),
      config: { workdir: '/app', env: { PORT: '8080' }, entrypoint: [], cmd: ['node', 'index.js'] },
    });
  });

  test('absolute paths (as parseImageFlag gives) are kept', () => {
    writeFileSync(path.join(dir, 'Dockerfile'), 'FROM a\nCMD ["x"]');
    const entry = parseImageFlag(`ghcr.io/me/x:2=${dir}`, '/somewhere/else');
    const image = loadImages('/another/root', [entry]).get('ghcr.io/me/x');
    expect(image).toMatchObject({ root: dir, dockerfile: path.join(dir, 'Dockerfile'), config: { cmd: ['x'] } });
  });

  test('a missing Dockerfile: the error names the file, the image and the --image fix', () => {
    const missing = path.join(dir, 'nope', 'Dockerfile');
    let message = '';
    try {
      loadImages(dir, [{ repository: 'ghcr.io/me/nope', dockerfile: 'nope/Dockerfile', root: 'nope' }]);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain(`cannot read ${missing} for image ghcr.io/me/nope: `);
    expect(message).toContain('ENOENT');
    expect(message).toMatch(/pass --image ghcr\.io\/me\/nope=FOLDER with a folder that holds its Dockerfile$/);
  });

  test('an unreadable CMD: the error starts with the Dockerfile path', () => {
    writeFileSync(path.join(dir, 'Dockerfile'), 'FROM a\nCMD ["node", oops]\n');
    expect(() => loadImages(dir, [{ repository: 'r', dockerfile: 'Dockerfile', root: '.' }])).toThrow(
      `${path.join(dir, 'Dockerfile')}: CMD ["node", oops] is not a JSON array of strings`,
    );
  });

  test('one bad entry fails the whole load', () => {
    writeFileSync(path.join(dir, 'Dockerfile'), 'FROM a\nCMD ["x"]');
    expect(() =>
      loadImages(dir, [
        { repository: 'good', dockerfile: 'Dockerfile', root: '.' },
        { repository: 'bad', dockerfile: 'missing/Dockerfile', root: '.' },
      ]),
    ).toThrow(/for image bad/);
  });
});

describe('findImage', () => {
  const hello = localImage('/app');
  const images = new Map([[hello.repository, hello]]);

  test('finds by repository, whatever the tag or digest', () => {
    expect(findImage(images, 'ghcr.io/me/hello')).toBe(hello);
    expect(findImage(images, 'ghcr.io/me/hello:0.1.0')).toBe(hello);
    expect(findImage(images, 'ghcr.io/me/hello:0.1.0@sha256:abc')).toBe(hello);
  });

  test('undefined for another repository', () => {
    expect(findImage(images, 'ghcr.io/me/other:1')).toBeUndefined();
    expect(findImage(images, 'ghcr.io/me/hell')).toBeUndefined();
    expect(findImage(images, '')).toBeUndefined();
  });
});

describe('mapImagePath: files', () => {
  test("an argv element naming one of the image's files is that file of this machine", () => {
    const image: LocalImage = { ...localImage('/'), files: { '/nats-server': '/cache/nats-server' } };
    expect(mapImagePath(image, '/nats-server')).toBe('/cache/nats-server');
    expect(mapImagePath(image, '/nats-server.conf')).toBe('/nats-server.conf');
    expect(mapImagePath(image, 'constructor')).toBe('constructor'); // an own key only
  });
});

describe('mapImagePath', () => {
  const image = localImage('/app');

  test('a path under WORKDIR maps to the same path under the folder', () => {
    expect(mapImagePath(image, '/app/bin/fnmesh.js')).toBe('/home/me/hello/bin/fnmesh.js');
    expect(mapImagePath(image, '/app/dist/a/b.js')).toBe('/home/me/hello/dist/a/b.js');
  });

  test('WORKDIR itself maps to the folder', () => {
    expect(mapImagePath(image, '/app')).toBe('/home/me/hello');
  });

  test('other arguments are unchanged', () => {
    for (const arg of [
      '/application/x',
      '/apps',
      '/opt/app/x',
      'dist/index.js',
      'app/x',
      '--config=/app/x',
      'node',
      '',
    ]) {
      expect(mapImagePath(image, arg)).toBe(arg);
    }
  });

  test('a WORKDIR with a trailing slash maps the same', () => {
    const trailing = localImage('/app/');
    expect(mapImagePath(trailing, '/app/x.js')).toBe('/home/me/hello/x.js');
    expect(mapImagePath(trailing, '/app')).toBe('/home/me/hello');
  });

  test('a nested WORKDIR', () => {
    const nested = localImage('/srv/app');
    expect(mapImagePath(nested, '/srv/app/main.py')).toBe('/home/me/hello/main.py');
    expect(mapImagePath(nested, '/srv/other.py')).toBe('/srv/other.py');
  });

  test('WORKDIR / maps nothing', () => {
    const root = localImage('/');
    for (const arg of ['/', '/bin/sh', '/app/x', 'x']) expect(mapImagePath(root, arg)).toBe(arg);
  });
});

describe('the built-in images, loaded from this checkout', () => {
  let images: Map<string, LocalImage>;
  beforeAll(() => {
    images = loadImages(repoRoot, BUILT_IN_IMAGES);
  });
  const argvOf = (ref: string, command?: string[], args?: string[]): string[] => {
    const image = findImage(images, ref);
    if (!image) throw new Error(`no image ${ref}`);
    return containerArgv(image.config, command, args).map((a) => mapImagePath(image, a));
  };

  test('every built-in image loads, with its folder in the checkout', () => {
    expect([...images.keys()].sort()).toEqual([
      'ghcr.io/fnmesh/examples-authz',
      'ghcr.io/fnmesh/examples-greeter',
      'ghcr.io/fnmesh/examples-text',
      'ghcr.io/fnmesh/fnmesh',
    ]);
    expect(images.get('ghcr.io/fnmesh/fnmesh')!.root).toBe(repoRoot);
    expect(images.get('ghcr.io/fnmesh/fnmesh')!.dockerfile).toBe(path.join(repoRoot, 'Dockerfile'));
    expect(images.get('ghcr.io/fnmesh/examples-text')!.root).toBe(path.join(repoRoot, 'examples', 'text'));
  });

  test('the fnmesh image: the final stage of the root Dockerfile', () => {
    expect(images.get('ghcr.io/fnmesh/fnmesh')!.config).toEqual({
      workdir: '/app',
      env: { NODE_ENV: 'production' },
      entrypoint: ['node', '/app/bin/fnmesh.js'],
      cmd: ['--help'],
    });
  });

  test("the fnmesh image runs this checkout's bin/fnmesh.js", () => {
    const cli = path.join(repoRoot, 'bin', 'fnmesh.js');
    expect(argvOf('ghcr.io/fnmesh/fnmesh:0.1.0')).toEqual(['node', cli, '--help']);
    expect(argvOf('ghcr.io/fnmesh/fnmesh:0.1.0', undefined, ['sidecar'])).toEqual(['node', cli, 'sidecar']);
    expect(argvOf('ghcr.io/fnmesh/fnmesh:0.1.0', undefined, ['gateway'])).toEqual(['node', cli, 'gateway']);
  });

  test('the TypeScript examples run their built dist/ entry from the checkout root', () => {
    expect(images.get('ghcr.io/fnmesh/examples-greeter')!).toMatchObject({
      root: repoRoot,
      config: { workdir: '/app', env: { NODE_ENV: 'production', PORT: '8080' } },
    });
    expect(argvOf('ghcr.io/fnmesh/examples-greeter:0.1.0')).toEqual(['node', 'dist/examples/greeter/index.js']);
    expect(argvOf('ghcr.io/fnmesh/examples-authz:0.1.0')).toEqual(['node', 'dist/examples/authz/index.js']);
  });

  test('the Python example runs server.py in its own folder', () => {
    expect(images.get('ghcr.io/fnmesh/examples-text')!.config).toEqual({
      workdir: '/app',
      env: { PORT: '8080', HOST: '127.0.0.1', PYTHONUNBUFFERED: '1' },
      entrypoint: [],
      cmd: ['python3', 'server.py'],
    });
    expect(argvOf('ghcr.io/fnmesh/examples-text:0.1.0')).toEqual(['python3', 'server.py']);
  });
});
