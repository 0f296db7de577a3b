/**
 * `fnmesh local`: manifests → an in-process gateway (with its embedded broker unless FNMESH_NATS_URL is
 * set) + for each service `spec.replicas` replicas of (function process + sidecar process), supervised,
 * following manifest edits, and stopped gracefully (sidecars first) on Ctrl-C.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, createLogger, readSettings, type Env, type FunctionService, type Logger } from '../common';
import { ManifestFileSource, sourceFileOf } from '../common/manifest-source';
import { devToken, randomSecret } from '../common/process/dev-token';
import { humanLogger } from '../common/process/human-logger';
import { Prefixer } from '../common/process/log-prefix';
import { portProblem } from '../common/process/ports';
import { startReaper } from '../common/process/reaper-link';
import { repoRoot } from '../common/process/repo-root';
import { runMain } from '../common/run-main';
import { killAllChildren, setChildListener } from '../common/process/supervisor';
import { loadGatewayConfig, startGateway } from '../gateway';
import { PlanApplier } from './applier';
import { banner } from './banner';
import { corsSummary } from './dev-origins';
import { localGatewayEnv } from './gateway-env';
import { localNatsPlan, prepareLocalNats } from './nats-setup';
import { desiredState } from './plan';
import { baseEnv } from './replica-env';
import { LocalReplicas, type LocalReplica } from './replicas';
import { LOCAL_SETTINGS } from './settings';

export interface LocalOptions {
  /** Manifest files and folders. */
  paths: string[];
  env: Env;
  /** Where all output goes (one string per write, lines end with \n). */
  write?: (text: string) => void;
  colour?: boolean;
  /** How often to say what is not ready yet while waiting (default 30 s). */
  readyWarnAfterMs?: number;
  /** Print the banner after this long even if some replicas are not ready (default 25 s). */
  readyDeadlineMs?: number;
}

export interface RunningMesh {
  gatewayUrl: string;
  natsUrl: string;
  /** The private directory of the mesh's NATS users (removed at stop). */
  natsUsersDir: string;
  stop(): Promise<void>;
}

type Listener = (services: FunctionService[]) => void;

/** One manifest source shared by the gateway (rules) and the mesh (replicas). */
class SharedSource {
  private readonly listeners: Listener[] = [];
  private started?: Promise<void>;
  private stopped?: Promise<void>;
  last?: FunctionService[];

  constructor(private readonly inner: ManifestFileSource) {}

  subscribe(listener: Listener): void {
    this.listeners.push(listener);
    if (this.last) listener(this.last);
  }

  /** The RuleSource face the gateway uses. */
  start(onChange: Listener): Promise<void> {
    this.subscribe(onChange);
    return this.ensureStarted();
  }

  ensureStarted(): Promise<void> {
    this.started ??= this.inner.start((services) => {
      this.last = services;
      for (const l of this.listeners) l(services);
    });
    return this.started;
  }

  stop(): Promise<void> {
    this.stopped ??= this.started ? this.inner.stop() : Promise.resolve();
    return this.stopped;
  }
}

function displayHost(host: string): string {
  return host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
}

export async function startLocalMesh(options: LocalOptions): Promise<RunningMesh> {
  const write = options.write ?? ((text: string) => void process.stdout.write(text));
  const prefixer = new Prefixer({ colour: options.colour ?? false, write });
  const say = (message: string): void => prefixer.line('mesh', 'mesh', message);
  const paths = options.paths.length > 0 ? options.paths : ['examples/'];
  for (const p of paths) {
    if (!existsSync(p))
      throw new ConfigError(`"${p}" does not exist: give manifest files or folders, e.g. fnmesh local examples/`);
  }
  const absPaths = paths.map((p) => path.resolve(p));

  const env: Env = localGatewayEnv(options.env);
  // Signed-in calls work out of the box: a random HS256 secret for this run unless one (or a JWKS) is set.
  const hasVerifier = [env.FNMESH_JWT_SECRET, env.FNMESH_JWKS_FILE, env.FNMESH_JWKS_URL].some(
    (v) => v !== undefined && v.trim() !== '',
  );
  if (!hasVerifier) env.FNMESH_JWT_SECRET = randomSecret();
  // refused before anything starts: NATS settings fnmesh local sets itself, an external NATS without a trust dir
  localNatsPlan(env);
  const plainConfig = loadGatewayConfig(env);
  // A token is printed only for the generated secret: never sign with (or reveal tokens of) a secret of yours.
  const token = hasVerifier ? undefined : devToken(env.FNMESH_JWT_SECRET!);
  const listenProblem = await portProblem(plainConfig.listen.host, plainConfig.listen.port);
  if (listenProblem) {
    const suggestion = `${displayHost(plainConfig.listen.host)}:${plainConfig.listen.port + 1}`;
    throw new ConfigError(
      listenProblem === 'EADDRINUSE'
        ? `the gateway cannot listen on ${plainConfig.listen.host}:${plainConfig.listen.port}: the port is already in use (another fnmesh local, or another server). Pick another port: FNMESH_LISTEN=${suggestion} npm start   (or: node bin/fnmesh.js local --listen ${suggestion} ${paths.join(' ')})`
        : `the gateway cannot listen on ${plainConfig.listen.host}:${plainConfig.listen.port} (${listenProblem}); set FNMESH_LISTEN to another host:port, e.g. FNMESH_LISTEN=127.0.0.1:8081 npm start`,
    );
  }
  const opsProblem = await portProblem(plainConfig.opsListen.host, plainConfig.opsListen.port);
  if (opsProblem) {
    const suggestion = `${displayHost(plainConfig.opsListen.host)}:${plainConfig.opsListen.port + 1}`;
    throw new ConfigError(
      `the gateway's ops listener (/metrics, /v1/services) cannot listen on ${plainConfig.opsListen.host}:${plainConfig.opsListen.port} (${opsProblem === 'EADDRINUSE' ? 'the port is already in use, perhaps by another fnmesh local' : opsProblem}). Pick another port: FNMESH_OPS_LISTEN=${suggestion} npm start   (or: node bin/fnmesh.js local --ops-listen ${suggestion} ${paths.join(' ')})`,
    );
  }
  if (!plainConfig.natsServers) {
    const brokerProblem = await portProblem(plainConfig.broker.host, plainConfig.broker.port);
    if (brokerProblem) {
      throw new ConfigError(
        `the embedded broker cannot listen on ${plainConfig.broker.host}:${plainConfig.broker.port} (${brokerProblem === 'EADDRINUSE' ? 'the port is already in use, perhaps by a nats-server or another fnmesh' : brokerProblem}). Pick another port: FNMESH_BROKER_PORT=${plainConfig.broker.port + 1} npm start, or use that server: FNMESH_NATS_URL=nats://${displayHost(plainConfig.broker.host)}:${plainConfig.broker.port} npm start`,
      );
    }
  }

  // Every part its own NATS user: the trust chain, the broker's JWTs and every .creds in a private directory.
  const nats = await prepareLocalNats(env, say);
  const removeNatsUsers = (): void => nats.users.remove();
  process.on('exit', removeNatsUsers);
  const config = loadGatewayConfig({ ...env, ...nats.gatewayEnv });
  const logger: Logger = createLogger({
    level: config.logLevel,
    stream: prefixer.stream('gateway', 'gateway'),
    defaultMeta: { component: 'gateway' },
  });
  const sourceLogger = humanLogger((line) => prefixer.line('manifests', 'mesh', line), config.logLevel === 'debug');
  const source = new SharedSource(new ManifestFileSource(absPaths, { logger: sourceLogger }));
  const baseDir = absPaths.length === 1 && !absPaths[0]!.match(/\.ya?ml$/i) ? absPaths[0]! : process.cwd();

  const gateway = await startGateway(config, { logger, ruleSource: source }).catch((err: unknown) => {
    process.off('exit', removeNatsUsers);
    removeNatsUsers();
    throw err;
  });
  const natsUrl = gateway.natsUrl;
  const replicas = new LocalReplicas({
    prefixer,
    say,
    root: repoRoot(),
    env: {
      base: baseEnv(options.env),
      natsUrl,
      ...(config.natsClient?.tls ? { natsTls: config.natsClient.tls } : {}),
      logLevel: options.env.FNMESH_LOG_LEVEL ?? 'info',
    },
    natsCreds: (plan) => nats.users.serviceCreds(plan.namespace, plan.service, plan.timeoutMs),
  });
  const applier = new PlanApplier<LocalReplica>({ replicas, say });
  let latest: FunctionService[] | undefined;
  let shuttingDown = false;
  await source.ensureStarted();
  const gatewayUrl = `http://${displayHost(config.listen.host)}:${gateway.port}`;
  say(
    `gateway listening on ${gatewayUrl} (ops: ${gateway.opsUrl}); broker ${natsUrl}${config.natsServers ? '' : ' (embedded)'}`,
  );
  // The gateway has started the source; a set it already loaded is replayed at once.
  source.subscribe((services) => {
    latest = services;
    if (shuttingDown) return;
    void applier.apply(
      desiredState(
        services.map((service) => ({ service, file: sourceFileOf(service) })),
        baseDir,
      ),
    );
  });

  // Print the banner once, when the gateway and every replica are ready; a replica that is still not
  // ready after `readyDeadlineMs` (e.g. one that keeps crashing) does not hold the others back.
  void (async () => {
    const started = Date.now();
    let warnedAt = started;
    const warnEvery = options.readyWarnAfterMs ?? 30_000;
    const deadline = started + (options.readyDeadlineMs ?? 25_000);
    let waiting: string[] = [];
    for (;;) {
      if (shuttingDown) return;
      const gwReady = gateway.readiness();
      waiting = applier
        .all()
        .filter((r) => !r.ready)
        .map((r) => r.id);
      const settled = latest !== undefined && applier.idle && gwReady.ready;
      if (settled && (waiting.length === 0 || Date.now() >= deadline)) break;
      if (Date.now() - warnedAt >= warnEvery) {
        warnedAt = Date.now();
        say(
          `still waiting after ${Math.round((Date.now() - started) / 1000)} s for: ${[...(gwReady.ready ? [] : [`gateway (${gwReady.reason ?? 'not ready'})`]), ...waiting].join(', ') || 'the manifests'}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (waiting.length > 0)
      say(
        `warning: not ready after ${Math.round((Date.now() - started) / 1000)} s: ${waiting.join(', ')} (see their output above); the rest of the mesh is up`,
      );
    write(
      banner(
        gatewayUrl,
        gateway.opsUrl,
        natsUrl,
        !config.natsServers,
        latest ?? [],
        applier,
        token,
        new Set(waiting),
        corsSummary(config.corsOrigins, config.corsCredentials),
        nats.users,
      ),
    );
  })();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      shuttingDown = true;
      say('stopping: sidecars first (they drain in-flight calls), then functions, then the gateway');
      await source.stop().catch(() => undefined);
      replicas.close();
      await applier.stopAll();
      await gateway.stop();
      process.off('exit', removeNatsUsers);
      removeNatsUsers();
      say('stopped');
    })();
    return stopping;
  };

  return { gatewayUrl, natsUrl, natsUsersDir: nats.users.dir, stop };
}

/** Runs `fnmesh local` until SIGINT/SIGTERM/SIGHUP; exits 0 after a graceful stop. */
export function runLocal(paths: string[], env: Env): Promise<RunningMesh> {
  return runMain(
    'fnmesh local',
    async () => {
      const { readyTimeoutMs } = readSettings(env, LOCAL_SETTINGS);
      process.on('exit', () => killAllChildren('SIGKILL'));
      setChildListener(startReaper());
      return startLocalMesh({
        paths,
        env,
        readyDeadlineMs: readyTimeoutMs,
        colour: Boolean(process.stdout.isTTY) && !env.NO_COLOR,
      });
    },
    { signals: ['SIGINT', 'SIGTERM', 'SIGHUP'], onForcedExit: () => killAllChildren('SIGKILL') },
  );
}
