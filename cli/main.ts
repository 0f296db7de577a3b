/**
 * The `fnmesh` command. Each subcommand's flags are its part's settings table (`<part>/settings.ts`), and
 * every flag sets the variable of its setting (for example `fnmesh gateway --listen 0.0.0.0:8080` sets
 * FNMESH_LISTEN), so flags and env are one config path. Each subcommand loads only the part it runs.
 */
import { Command, CommanderError, Option } from 'commander';
// common/ file by file (errors, the settings rows): the common barrel would load zod and yaml into every process
import { ConfigError, errorMessage } from '../common/errors';
import { describeDefault, type Env, type SettingSpec, type SettingsTable } from '../common/config';
// the settings tables only (light modules), not the parts: each command loads its part when it runs
import { BROKER_SETTINGS } from '../broker/settings';
import { CLUSTER_SETTINGS } from '../cluster/settings';
import { GATEWAY_SETTINGS } from '../gateway/settings';
import { LOCAL_SETTINGS } from '../local/settings';
import { OPERATOR_SETTINGS } from '../operator/settings';
import { SIDECAR_SETTINGS } from '../sidecar/settings';
import { fnmeshVersion } from '../common/process/version';
import { SIDECAR_BUNDLE, loadBundle } from './bundles';

/** Every subcommand's settings table, by subcommand. */
export const SETTINGS = {
  local: LOCAL_SETTINGS,
  cluster: CLUSTER_SETTINGS,
  gateway: GATEWAY_SETTINGS,
  sidecar: SIDECAR_SETTINGS,
  operator: OPERATOR_SETTINGS,
  broker: BROKER_SETTINGS,
} as const;

/** The commander attribute a flag's value lands in: `--max-body-bytes <n>` → maxBodyBytes. */
export function flagKey(flag: string): string {
  const long = /--([a-z0-9-]+)/.exec(flag)![1]!;
  return long.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** A setting's help line: what it does, its variable, and its default (or that it is required). */
export function settingHelp(s: SettingSpec<unknown>): string {
  const shown = describeDefault(s);
  const suffix =
    shown === undefined
      ? ''
      : s.default === undefined && s.required !== undefined
        ? '; required'
        : `; default: ${shown}`;
  return `${s.help} (env ${s.env}${suffix})`;
}

/** Every setting of a table as a flag (no commander default: an unset flag leaves the variable alone). */
function addSettings(cmd: Command, table: SettingsTable): Command {
  for (const s of Object.values(table)) cmd.addOption(new Option(s.flag, settingHelp(s)));
  return cmd;
}

/** Flag values → env overrides; a flag wins over the variable already set. Pure. */
export function flagsToEnv(opts: Record<string, unknown>, table: SettingsTable, base: Env): Env {
  const env: Env = { ...base };
  for (const s of Object.values(table)) {
    const value = opts[flagKey(s.flag)];
    if (typeof value === 'string') env[s.env] = value;
    else if (value === true) env[s.env] = 'true'; // a bare `--flag [bool]`
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

  addSettings(
    program
      .command('local')
      .description(
        'run a local mesh: the gateway (with an embedded broker) and every service in the manifests, supervised and hot-reloaded',
      )
      .argument('[paths...]', 'FunctionService manifest files or folders', ['examples/']),
    SETTINGS.local,
  ).action(async (paths: string[], opts: Record<string, unknown>) => {
    const { runLocal } = load<typeof import('../local/mesh')>('../local/mesh');
    await runLocal(paths, flagsToEnv(opts, SETTINGS.local, io.env));
  });

  addSettings(
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
    SETTINGS.cluster,
  ).action(async (opts: Record<string, unknown>) => {
    const { runCluster } = load<typeof import('../cluster/cluster')>('../cluster/cluster');
    await runCluster(flagsToEnv(opts, SETTINGS.cluster, io.env), (opts.image as string[] | undefined) ?? []);
  });

  /** A subcommand that runs one part, its settings as flags; `start` loads the part only when it runs. */
  const partCommand = (
    name: 'gateway' | 'sidecar' | 'operator' | 'broker',
    description: string,
    start: (env: Env) => Promise<unknown>,
  ) =>
    addSettings(program.command(name).description(description), SETTINGS[name]).action(
      async (opts: Record<string, unknown>) => {
        await start(flagsToEnv(opts, SETTINGS[name], io.env));
      },
    );
  partCommand('gateway', 'run the gateway (HTTP call API, JWT, rules; embedded broker unless FNMESH_NATS_URL)', (env) =>
    load<typeof import('../gateway/main')>('../gateway/main').main(env),
  );
  // from its bundle (cli/bundles.ts), as a bare `fnmesh sidecar` starts it
  partCommand('sidecar', 'run the sidecar beside a function (configured by FNMESH_* env or the flags below)', (env) =>
    loadBundle<typeof import('../sidecar/main')>(SIDECAR_BUNDLE).main(env),
  );
  partCommand(
    'operator',
    'run the operator: FunctionServices → Deployments with the injected sidecar (--kubeconfig, KUBECONFIG or in-cluster)',
    (env) => load<typeof import('../operator/main')>('../operator/main').main(env),
  );
  partCommand('broker', 'run the embedded NATS-protocol broker on its own', (env) =>
    load<typeof import('./broker')>('./broker').runBroker(env),
  );

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
