/**
 * Property-based fuzzing of the gateway against its own OpenAPI document: schemathesis (scripts/schemathesis.sh
 * installs the pinned version; `npm test` runs it) generates requests from the document the gateway serves at
 * GET /openapi.json and checks every answer: no 5xx but the documented 502/503/504, the status, content type,
 * headers and body each as documented, and an answer within the response-time check's (generous) bound.
 * The run is bounded (examples per operation, a wall-clock limit) and seeded, so it repeats.
 *
 * Alone: `npm run build && bash scripts/schemathesis.sh && npx jest test/openapi-fuzz.test.ts`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  FUZZ_FUNCTIONS,
  FUZZ_NAMESPACE,
  FUZZ_SERVICE,
  metricValue,
  startFrontDoor,
  type FrontDoor,
} from './helpers/front-door';
import { ROOT } from './helpers/mesh';

/** Generated test cases per operation, the seed, and the wall-clock bound of one schemathesis run. */
const MAX_EXAMPLES = 200;
const SEED = 20261203;
const RUN_LIMIT_MS = 150_000;
/** Seconds: the response-time check's bound, far above any answer of a healthy gateway on a loaded machine. */
const MAX_RESPONSE_SECONDS = 10;

jest.setTimeout(2 * RUN_LIMIT_MS + 60_000);

type Doc = {
  paths: Record<string, Record<string, unknown> & { parameters?: { name: string; schema: Record<string, unknown> }[] }>;
};

/** The schemathesis binary scripts/schemathesis.sh installs (its one definition of the path). */
function schemathesisBinary(): string {
  const bin = execFileSync('bash', [path.join(ROOT, 'scripts', 'schemathesis.sh'), '--print-path'], {
    encoding: 'utf8',
  }).trim();
  if (!existsSync(bin))
    throw new Error(`schemathesis is not installed at ${bin}: run \`bash scripts/schemathesis.sh\` (npm test does it)`);
  return bin;
}

/** Every 5xx status the document gives any operation: the only server errors the fuzzer accepts. */
function documented5xx(doc: Doc): string[] {
  const statuses = new Set<string>();
  for (const item of Object.values(doc.paths))
    for (const op of Object.values(item))
      for (const s of Object.keys((op as { responses?: object }).responses ?? {})) if (/^5/.test(s)) statuses.add(s);
  return [...statuses].sort();
}

/**
 * The served document with the call route's names narrowed to the probe's (so generated calls reach the
 * functions and their rules, not only 404s); every answer is still checked against the document's responses.
 */
function narrowedToProbe(doc: Doc): Doc {
  const copy = structuredClone(doc);
  const names: Record<string, string[]> = {
    namespace: [FUZZ_NAMESPACE],
    service: [FUZZ_SERVICE],
    function: Object.keys(FUZZ_FUNCTIONS),
  };
  for (const item of Object.values(copy.paths)) {
    for (const p of item.parameters ?? []) if (names[p.name]) p.schema = { ...p.schema, enum: names[p.name] };
    delete item.servers; // each run names its listener with --url
  }
  return copy;
}

interface Run {
  code: number | null;
  output: string;
}

function runSchemathesis(bin: string, dir: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      bin,
      args,
      {
        cwd: dir,
        timeout: RUN_LIMIT_MS,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, NO_COLOR: '1' },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        const killed = err && (err as { killed?: boolean }).killed ? `\n(killed after ${RUN_LIMIT_MS} ms)` : '';
        resolve({ code, output: `${stdout}${stderr}${killed}` });
      },
    );
  });
}

describe('the gateway under schemathesis, against its OpenAPI document', () => {
  let door: FrontDoor;
  let dir: string;
  let bin: string;
  let doc: Doc;

  beforeAll(async () => {
    bin = schemathesisBinary();
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-schemathesis-'));
    door = await startFrontDoor();
    const res = await fetch(`${door.url}/openapi.json`);
    expect(res.status).toBe(200);
    doc = (await res.json()) as Doc;
    writeFileSync(path.join(dir, 'openapi.json'), JSON.stringify(narrowedToProbe(doc)));
    const allowed = ['2xx', '3xx', '4xx', ...documented5xx(doc)].map((s) => JSON.stringify(s)).join(', ');
    writeFileSync(
      path.join(dir, 'schemathesis.toml'),
      `[checks.not_a_server_error]\nexpected-statuses = [${allowed}]\n`,
    );
  });

  afterAll(async () => {
    await door?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves the committed document (docs/openapi.json), with the limits it runs with', () => {
    const committed = JSON.parse(readFileSync(path.join(ROOT, 'docs', 'openapi.json'), 'utf8')) as Doc & {
      info: Record<string, unknown>;
    };
    expect(doc.paths).toEqual(committed.paths);
    expect(Object.keys((doc as unknown as typeof committed).info['x-fnmesh-limits'] as object).sort()).toEqual(
      Object.keys(committed.info['x-fnmesh-limits'] as object).sort(),
    );
  });

  it('documents 502, 503 and 504 as the only server errors of a call', () => {
    expect(documented5xx(doc)).toEqual(['502', '503', '504']);
  });

  /** Every operation, or those whose tag matches `tags`. */
  const args = (url: string, tags?: string): string[] => [
    '--config-file',
    'schemathesis.toml',
    'run',
    'openapi.json',
    '--url',
    url,
    ...(tags ? ['--include-tag-regex', tags] : []),
    '--checks',
    'not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance',
    '--max-response-time',
    String(MAX_RESPONSE_SECONDS),
    '--phases',
    'examples,coverage,fuzzing',
    '--mode',
    'all',
    '--max-examples',
    String(MAX_EXAMPLES),
    '--seed',
    String(SEED),
    '--workers',
    '1',
    '--request-timeout',
    '20',
    '--generation-database',
    'none',
    '--no-color',
  ];

  it('answers every generated request as its document says (call listener: every operation)', async () => {
    const run = await runSchemathesis(bin, dir, args(door.url));
    if (run.code !== 0) throw new Error(`schemathesis exited with ${run.code}:\n${run.output.slice(-20_000)}`);
    if (process.env.FNMESH_FUZZ_VERBOSE) process.stdout.write(run.output);
    expect(run.output).toMatch(/passed/);
    // the generated calls reached the functions and their rules, not only the route's 400s and 404s
    const metrics = await (await fetch(`${door.opsUrl}/metrics`)).text();
    const answered = (fn: string, status: number): number =>
      metricValue(
        metrics.replace(/,component="gateway"/g, ''),
        'fnmesh_gateway_requests_total',
        `{namespace="${FUZZ_NAMESPACE}",service="${FUZZ_SERVICE}",function="${fn}",status="${status}",kind="http"}`,
      ) ?? 0;
    expect(answered('open', 200)).toBeGreaterThan(0);
    expect(answered('closed', 403)).toBeGreaterThan(0);
    expect(answered('members', 401)).toBeGreaterThan(0);
  });

  it('answers every generated request as its document says (ops listener: the ops endpoints)', async () => {
    const run = await runSchemathesis(bin, dir, args(door.opsUrl, '^ops$'));
    if (run.code !== 0) throw new Error(`schemathesis exited with ${run.code}:\n${run.output.slice(-20_000)}`);
    if (process.env.FNMESH_FUZZ_VERBOSE) process.stdout.write(run.output);
    expect(run.output).toMatch(/passed/);
  });
});
