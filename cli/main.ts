/**
 * The `fnmesh` command. Every flag maps onto the FNMESH_* variable of the same setting (for example
 * `fnmesh gateway --listen 0.0.0.0:8080` sets FNMESH_LISTEN), so flags and env are one config path.
 * Each subcommand loads only the part it runs.
 */
import { Command, CommanderError, Option } from 'commander';
// the error module and the config types only: the common barrel would load zod and yaml into every process
import { ConfigError, errorMessage } from '../common/errors';
import type { Env } from '../common/config';
// a constant of a module that loads nothing (types only)
import { KUBECONFIG_VAR } from '../common/kube-access';
import { fnmeshVersion } from './version';
import { DEV_CORS_ORIGINS } from '../local/dev-origins';

/** One flag: its commander spelling, help text and the env variable it sets. */
export interface FlagSpec {
  flags: string;
  env: string;
  description: string;
}

/** The kubeconfig setting, the same for every part that talks to the API server. */
const KUBECONFIG_FLAG: FlagSpec = {
  flags: '--kubeconfig <file>',
  env: KUBECONFIG_VAR,
  description: 'kubeconfig file (default KUBECONFIG, ~/.kube/config, else the pod ServiceAccount)',
};

export const GATEWAY_FLAGS: FlagSpec[] = [
  { flags: '--listen <host:port>', env: 'FNMESH_LISTEN', description: 'HTTP call API address' },
  {
    flags: '--ops-listen <host:port>',
    env: 'FNMESH_OPS_LISTEN',
    description: 'separate address for /healthz /readyz /metrics',
  },
  {
    flags: '--nats-url <urls>',
    env: 'FNMESH_NATS_URL',
    description: 'external NATS servers (comma list); unset runs the embedded broker',
  },
  { flags: '--nats-token <token>', env: 'FNMESH_NATS_TOKEN', description: 'NATS auth token' },
  { flags: '--broker-host <host>', env: 'FNMESH_BROKER_HOST', description: 'embedded broker host (default 127.0.0.1)' },
  { flags: '--broker-port <port>', env: 'FNMESH_BROKER_PORT', description: 'embedded broker port (default 4222)' },
  {
    flags: '--manifests <paths>',
    env: 'FNMESH_MANIFESTS',
    description: 'FunctionService manifest files/folders (comma list)',
  },
  {
    flags: '--rule-source <source>',
    env: 'FNMESH_RULE_SOURCE',
    description: 'where rules come from: files (FNMESH_MANIFESTS) or kubernetes (FunctionService objects)',
  },
  { ...KUBECONFIG_FLAG, description: `the kubernetes rule source's ${KUBECONFIG_FLAG.description}` },
  {
    flags: '--watch-namespace <ns>',
    env: 'FNMESH_WATCH_NAMESPACE',
    description: 'kubernetes rule source: watch only this namespace (default all)',
  },
  { flags: '--jwt-secret <secrets>', env: 'FNMESH_JWT_SECRET', description: 'HS256 secrets (comma list)' },
  { flags: '--jwks-file <file>', env: 'FNMESH_JWKS_FILE', description: 'JWKS file of public keys' },
  { flags: '--jwks-url <url>', env: 'FNMESH_JWKS_URL', description: 'JWKS URL of public keys' },
  { flags: '--jwt-issuer <iss>', env: 'FNMESH_JWT_ISSUER', description: 'required JWT issuer' },
  { flags: '--jwt-audience <aud>', env: 'FNMESH_JWT_AUDIENCE', description: 'required JWT audience' },
  {
    flags: '--default-rule <json>',
    env: 'FNMESH_DEFAULT_RULE',
    description: 'gateway-wide default rule as JSON (default deny)',
  },
  {
    flags: '--cors-origins <origins>',
    env: 'FNMESH_CORS_ORIGINS',
    description: 'browser origins allowed to call ("*" or comma list; http://localhost:* allows any port)',
  },
  {
    flags: '--cors-credentials <bool>',
    env: 'FNMESH_CORS_CREDENTIALS',
    description: 'answer listed origins with Access-Control-Allow-Credentials (default true; never with "*")',
  },
  { flags: '--log-level <level>', env: 'FNMESH_LOG_LEVEL', description: 'debug, info, warn, error or silent' },
];

export const LOCAL_FLAGS: FlagSpec[] = [
  ...GATEWAY_FLAGS.map((f) =>
    f.env === 'FNMESH_CORS_ORIGINS'
      ? {
          ...f,
          description: `${f.description.replace(/\)$/, '')}; default ${DEV_CORS_ORIGINS}; '' allows none)`,
        }
      : f,
  ).filter(
    (f) =>
      ![
        'FNMESH_MANIFESTS',
        'FNMESH_OPS_LISTEN',
        'FNMESH_RULE_SOURCE',
        KUBECONFIG_VAR,
        'FNMESH_WATCH_NAMESPACE',
      ].includes(f.env),
  ),
  {
    flags: '--ready-timeout-ms <ms>',
    env: 'FNMESH_LOCAL_READY_TIMEOUT_MS',
    description: 'print the summary after this long even if a replica is not ready (default 25000)',
  },
];

export const CLUSTER_FLAGS: FlagSpec[] = [
  {
    flags: '--listen <host:port>',
    env: 'FNMESH_LISTEN',
    description: "the gateway's HTTP call API address (default 127.0.0.1:8080)",
  },
  {
    flags: '--broker-port <port>',
    env: 'FNMESH_BROKER_PORT',
    description: "the gateway's embedded broker port (default 4222; 0 picks a free one)",
  },
  {
    flags: '--jwt-secret <secrets>',
    env: 'FNMESH_JWT_SECRET',
    description: 'HS256 secrets of the gateway (default: one generated for the run, with a token printed)',
  },
  { flags: '--log-level <level>', env: 'FNMESH_LOG_LEVEL', description: 'debug, info, warn, error or silent' },
];

export const SIDECAR_FLAGS: FlagSpec[] = [
  { flags: '--namespace <ns>', env: 'FNMESH_NAMESPACE', description: 'namespace of the service (default "default")' },
  { flags: '--service <name>', env: 'FNMESH_SERVICE', description: 'service name (required)' },
  { flags: '--functions <names>', env: 'FNMESH_FUNCTIONS', description: 'declared function names (comma list)' },
  { flags: '--nats-url <urls>', env: 'FNMESH_NATS_URL', description: 'NATS servers (comma list, required)' },
  { flags: '--nats-token <token>', env: 'FNMESH_NATS_TOKEN', description: 'NATS auth token' },
  {
    flags: '--function-port <port>',
    env: 'FNMESH_FUNCTION_PORT',
    description: 'port the function serves on 127.0.0.1',
  },
  { flags: '--health-path <path>', env: 'FNMESH_HEALTH_PATH', description: "the function's health path" },
  { flags: '--concurrency <n>', env: 'FNMESH_CONCURRENCY', description: 'calls run at once by this replica' },
  { flags: '--timeout-ms <ms>', env: 'FNMESH_TIMEOUT_MS', description: 'default call deadline' },
  { flags: '--ops-listen <host:port>', env: 'FNMESH_OPS_LISTEN', description: '/healthz /readyz /metrics address' },
  { flags: '--call-listen <host:port>', env: 'FNMESH_CALL_LISTEN', description: 'localhost call API address' },
  { flags: '--replica-id <id>', env: 'FNMESH_REPLICA_ID', description: 'replica id for discovery and logs' },
  { flags: '--log-level <level>', env: 'FNMESH_LOG_LEVEL', description: 'debug, info, warn, error or silent' },
];

export const OPERATOR_FLAGS: FlagSpec[] = [
  KUBECONFIG_FLAG,
  {
    flags: '--listen <host:port>',
    env: 'FNMESH_OPERATOR_LISTEN',
    description: '/healthz /readyz /metrics address (default 0.0.0.0:8081)',
  },
  {
    flags: '--sidecar-image <image>',
    env: 'FNMESH_SIDECAR_IMAGE',
    description: 'image of the injected sidecar (required)',
  },
  {
    flags: '--sidecar-nats-url <urls>',
    env: 'FNMESH_SIDECAR_NATS_URL',
    description: 'NATS servers the sidecars connect to (comma list, required)',
  },
  {
    flags: '--sidecar-nats-token-secret <secret/key>',
    env: 'FNMESH_SIDECAR_NATS_TOKEN_SECRET',
    description: 'Secret key holding the NATS token sidecars use',
  },
  {
    flags: '--watch-namespace <ns>',
    env: 'FNMESH_WATCH_NAMESPACE',
    description: 'watch only this namespace (default all)',
  },
  {
    flags: '--leader-elect <bool>',
    env: 'FNMESH_LEADER_ELECT',
    description: 'elect a leader among replicas through a Lease (default true)',
  },
  {
    flags: '--lease-namespace <ns>',
    env: 'FNMESH_LEASE_NAMESPACE',
    description: 'namespace of the leader Lease (default POD_NAMESPACE or fnmesh-system)',
  },
  {
    flags: '--concurrent-reconciles <n>',
    env: 'FNMESH_CONCURRENT_RECONCILES',
    description: 'FunctionServices reconciled at once (default 16)',
  },
  {
    flags: '--kube-api-connections <n>',
    env: 'FNMESH_KUBE_API_CONNECTIONS',
    description: 'keep-alive connections to the API server for requests (default 16)',
  },
  {
    flags: '--status-progress-interval-ms <ms>',
    env: 'FNMESH_STATUS_PROGRESS_INTERVAL_MS',
    description: "a rollout's replica counts go to status at most this often (default 5000; 0 = every change)",
  },
  {
    flags: '--resync-ms <ms>',
    env: 'FNMESH_RESYNC_MS',
    description: 'reconcile every object this often even without changes (default 300000)',
  },
  { flags: '--log-level <level>', env: 'FNMESH_LOG_LEVEL', description: 'debug, info, warn, error or silent' },
];

function addFlags(cmd: Command, specs: FlagSpec[]): Command {
  for (const s of specs) cmd.addOption(new Option(s.flags, `${s.description} (env ${s.env})`));
  return cmd;
}

/** Flag values → env overrides; a flag wins over the variable already set. Pure. */
export function flagsToEnv(opts: Record<string, unknown>, specs: FlagSpec[], base: Env): Env {
  const env: Env = { ...base };
  for (const s of specs) {
    const long = /--([a-z0-9-]+)/.exec(s.flags)![1]!;
    const key = long.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    const value = opts[key];
    if (typeof value === 'string') env[s.env] = value;
  }
  return env;
}

/** Loads a part's module only when its command runs (a sidecar does not load the gateway). */
function load<T>(id: string): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(id) as T;
}

export interface CliIo {
  env: Env;
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Set by commands that finish with a status (validate). */
export interface CliState {
  exitCode: number;
}

export function buildProgram(io: CliIo, state: CliState = { exitCode: 0 }): Command {
  const program = new Command('fnmesh')
    .description('fnmesh: a functions mesh. Run `fnmesh local` to start the examples on this machine.')
    .version(fnmeshVersion(), '-v, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .exitOverride();

  addFlags(
    program
      .command('local')
      .description(
        'run a local mesh: the gateway (with an embedded broker) and every service in the manifests, supervised and hot-reloaded',
      )
      .argument('[paths...]', 'FunctionService manifest files or folders', ['examples/']),
    LOCAL_FLAGS,
  ).action(async (paths: string[], opts: Record<string, unknown>) => {
    const { runLocal } = load<typeof import('../local/mesh')>('../local/mesh');
    await runLocal(paths, flagsToEnv(opts, LOCAL_FLAGS, io.env));
  });

  addFlags(
    program
      .command('cluster')
      .description(
        'run Kubernetes on this machine (no Docker): a control plane, the operator, the gateway, and a node whose pods are local processes (needs root)',
      )
      .option(
        '--image <image=folder...>',
        'run IMAGE from FOLDER (which holds its Dockerfile); repeatable. The fnmesh image and the examples are built in',
        [],
      ),
    CLUSTER_FLAGS,
  ).action(async (opts: Record<string, unknown>) => {
    const { runCluster } = load<typeof import('../cluster/cluster')>('../cluster/cluster');
    await runCluster(flagsToEnv(opts, CLUSTER_FLAGS, io.env), (opts.image as string[] | undefined) ?? []);
  });

  addFlags(
    program
      .command('gateway')
      .description('run the gateway (HTTP call API, JWT, rules; embedded broker unless FNMESH_NATS_URL)'),
    GATEWAY_FLAGS,
  ).action(async (opts: Record<string, unknown>) => {
    const { main } = load<typeof import('../gateway/main')>('../gateway/main');
    await main(flagsToEnv(opts, GATEWAY_FLAGS, io.env));
  });

  addFlags(
    program
      .command('sidecar')
      .description('run the sidecar beside a function (configured by FNMESH_* env or the flags below)'),
    SIDECAR_FLAGS,
  ).action(async (opts: Record<string, unknown>) => {
    const { main } = load<typeof import('../sidecar/main')>('../sidecar/main');
    await main(flagsToEnv(opts, SIDECAR_FLAGS, io.env));
  });

  addFlags(
    program
      .command('operator')
      .description(
        'run the operator: FunctionServices → Deployments with the injected sidecar (--kubeconfig, KUBECONFIG or in-cluster)',
      ),
    OPERATOR_FLAGS,
  ).action(async (opts: Record<string, unknown>) => {
    const { main } = load<typeof import('../operator/main')>('../operator/main');
    await main(flagsToEnv(opts, OPERATOR_FLAGS, io.env));
  });

  program
    .command('broker')
    .description('run the embedded NATS-protocol broker on its own')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on', '4222')
    .option('--token <token>', 'require this auth token from clients')
    .action(async (opts: { host: string; port: string; token?: string }) => {
      const { runBroker } = load<typeof import('./broker')>('./broker');
      await runBroker(opts, io);
    });

  program
    .command('validate')
    .description(
      'validate FunctionService manifests and compile their rules; prints each error with file and field; exits 1 on errors',
    )
    .argument('<paths...>', 'manifest files or folders')
    .action(async (paths: string[]) => {
      const { validatePaths } = load<typeof import('./validate')>('./validate');
      const result = await validatePaths(paths);
      for (const line of result.lines) (line.ok ? io.out : io.err)(`${line.text}\n`);
      if (result.errors > 0) {
        io.err(`fnmesh validate: ${result.errors} error(s)\n`);
        state.exitCode = 1;
      }
    });

  return program;
}

export async function run(argv: string[], io: CliIo): Promise<number> {
  const state: CliState = { exitCode: 0 };
  const program = buildProgram(io, state);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return state.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; usage errors (unknown flag or command, missing argument) exit 2
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      if (err.code === 'commander.help') return err.exitCode === 0 ? 0 : 2;
      return 2;
    }
    if (err instanceof ConfigError) {
      io.err(`fnmesh: ${err.message}\n`);
      return 2;
    }
    io.err(`fnmesh: ${errorMessage(err)}\n`);
    return 1;
  }
}

if (require.main === module || process.argv[1]?.endsWith('fnmesh.js')) {
  const io: CliIo = {
    env: process.env,
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
  };
  run(process.argv.slice(2), io).then(
    (code) => {
      if (code !== 0) process.exit(code);
    },
    (err: unknown) => {
      console.error(`fnmesh: ${errorMessage(err)}`);
      process.exit(1);
    },
  );
}
