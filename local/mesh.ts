/**
 * `fnmesh local`: manifests → an in-process gateway (with its embedded broker unless FNMESH_NATS_URL is
 * set) + for each service `spec.replicas` replicas of (function process + sidecar process), supervised,
 * following manifest edits, and stopped gracefully (sidecars first) on Ctrl-C.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  ConfigError,
  createLogger,
  errorMessage,
  readSettings,
  type Env,
  type FunctionService,
  type Logger,
} from '../common';
import { ManifestFileSource, sourceFileOf } from '../common/manifest-source';
import { loadGatewayConfig, startGateway } from '../gateway';
import { devToken, randomSecret } from '../common/process/dev-token';
import { corsSummary, withDevOrigins } from './dev-origins';
import { Prefixer } from '../common/process/log-prefix';
import { desiredState, diff, replicaId, type ServicePlan } from './plan';
import { freePort, portProblem } from '../common/process/ports';
import { Supervisor, describeExit, killAllChildren, setChildListener } from '../common/process/supervisor';
import { startReaper } from '../common/process/reaper-link';
import { humanLogger } from '../common/process/human-logger';
import { repoRoot } from '../common/process/repo-root';
import { runMain } from '../common/run-main';
import { LOCAL_SETTINGS } from './settings';
import { baseEnv, drainTimeoutMs, functionProcessEnv, sidecarProcessEnv } from './replica-env';

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

interface Replica {
  key: string;
  index: number;
  id: string;
  plan: ServicePlan;
  fnPort: number;
  opsPort: number;
  callPort: number;
  fn: Supervisor;
  sc: Supervisor;
  ready: boolean;
  pollGeneration: number;
  stopping: boolean;
}

const usedPorts = new Set<number>();
async function allocatePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await freePort();
    if (!usedPorts.has(p)) {
      usedPorts.add(p);
      return p;
    }
  }
  throw new Error('cannot find a free local port');
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

  const env: Env = withDevOrigins({
    ...options.env,
    FNMESH_LISTEN: options.env.FNMESH_LISTEN ?? LOCAL_SETTINGS.listen.default,
  });
  // Signed-in calls work out of the box: a random HS256 secret for this run unless one (or a JWKS) is set.
  const hasVerifier = [env.FNMESH_JWT_SECRET, env.FNMESH_JWKS_FILE, env.FNMESH_JWKS_URL].some(
    (v) => v !== undefined && v.trim() !== '',
  );
  if (!hasVerifier) env.FNMESH_JWT_SECRET = randomSecret();
  const config = loadGatewayConfig(env);
  // A token is printed only for the generated secret: never sign with (or reveal tokens of) a secret of yours.
  const token = hasVerifier ? undefined : devToken(env.FNMESH_JWT_SECRET!);
  const listenProblem = await portProblem(config.listen.host, config.listen.port);
  if (listenProblem) {
    const suggestion = `${displayHost(config.listen.host)}:${config.listen.port + 1}`;
    throw new ConfigError(
      listenProblem === 'EADDRINUSE'
        ? `the gateway cannot listen on ${config.listen.host}:${config.listen.port}: the port is already in use (another fnmesh local, or another server). Pick another port: FNMESH_LISTEN=${suggestion} npm start   (or: node bin/fnmesh.js local --listen ${suggestion} ${paths.join(' ')})`
        : `the gateway cannot listen on ${config.listen.host}:${config.listen.port} (${listenProblem}); set FNMESH_LISTEN to another host:port, e.g. FNMESH_LISTEN=127.0.0.1:8081 npm start`,
    );
  }
  if (!config.natsServers) {
    const brokerProblem = await portProblem(config.broker.host, config.broker.port);
    if (brokerProblem) {
      throw new ConfigError(
        `the embedded broker cannot listen on ${config.broker.host}:${config.broker.port} (${brokerProblem === 'EADDRINUSE' ? 'the port is already in use, perhaps by a nats-server or another fnmesh' : brokerProblem}). Pick another port: FNMESH_BROKER_PORT=${config.broker.port + 1} npm start, or use that server: FNMESH_NATS_URL=nats://${displayHost(config.broker.host)}:${config.broker.port} npm start`,
      );
    }
  }

  const logger: Logger = createLogger({
    level: config.logLevel,
    stream: prefixer.stream('gateway', 'gateway'),
    defaultMeta: { component: 'gateway' },
  });
  const sourceLogger = humanLogger((line) => prefixer.line('manifests', 'mesh', line), config.logLevel === 'debug');
  const source = new SharedSource(new ManifestFileSource(absPaths, { logger: sourceLogger }));
  const root = repoRoot();
  const fnmeshBin = path.join(root, 'bin', 'fnmesh.js');

  const replicas = new Map<string, Replica[]>();
  const skippedWarned = new Map<string, string>();
  let latest: FunctionService[] | undefined;
  let natsUrl = '';
  let shuttingDown = false;
  let dirty = false;
  let reconciling: Promise<void> | undefined;

  source.subscribe((services) => {
    latest = services;
    schedule();
  });

  const gateway = await startGateway(config, { logger, ruleSource: source });
  natsUrl = gateway.natsUrl;
  await source.ensureStarted();
  const gatewayUrl = `http://${displayHost(config.listen.host)}:${gateway.port}`;
  say(`gateway listening on ${gatewayUrl}; broker ${natsUrl}${config.natsServers ? '' : ' (embedded)'}`);

  function schedule(): void {
    if (natsUrl === '' || shuttingDown) return;
    dirty = true;
    if (!reconciling) {
      reconciling = (async () => {
        while (dirty && !shuttingDown) {
          dirty = false;
          try {
            await reconcile();
          } catch (err) {
            say(`error: applying the manifests failed: ${errorMessage(err)}`);
          }
        }
        reconciling = undefined;
      })();
    }
  }

  async function reconcile(): Promise<void> {
    const services = latest ?? [];
    const desired = desiredState(
      services.map((service) => ({ service, file: sourceFileOf(service) })),
      absPaths.length === 1 && !absPaths[0]!.match(/\.ya?ml$/i) ? absPaths[0]! : process.cwd(),
    );
    for (const s of desired.skipped) {
      if (skippedWarned.get(s.key) !== s.reason) say(`warning: ${s.key}: ${s.reason}`);
      skippedWarned.set(s.key, s.reason);
    }
    for (const key of [...skippedWarned.keys()])
      if (!desired.skipped.some((s) => s.key === key)) skippedWarned.delete(key);

    const running = new Map(
      [...replicas].map(([key, list]) => [key, list.map((r) => ({ index: r.index, fingerprint: r.plan.fingerprint }))]),
    );
    const actions = diff(desired.services, running);
    if (actions.length === 0) return;
    const stops: Promise<void>[] = [];
    const restartsByService = new Map<string, number[]>();
    for (const a of actions) {
      if (a.type === 'stop') {
        const r = takeReplica(a.key, a.index);
        if (r) {
          say(
            `${a.key}: stopping replica ${r.id}${desired.services.has(a.key) ? ' (scale down)' : ' (manifest removed)'}`,
          );
          stops.push(stopReplica(r));
        }
      } else if (a.type === 'start') {
        const plan = desired.services.get(a.key)!;
        const r = await createReplica(plan, a.index);
        addReplica(r);
      } else {
        const list = restartsByService.get(a.key) ?? [];
        list.push(a.index);
        restartsByService.set(a.key, list);
      }
    }
    await Promise.all([
      ...stops,
      // Each changed service restarts its replicas one at a time; different services in parallel.
      ...[...restartsByService].map(async ([key, indices]) => {
        const plan = desired.services.get(key)!;
        say(`${key}: its spec.local, ports or limits changed; restarting ${indices.length} replica(s) one at a time`);
        for (const index of indices) {
          if (shuttingDown) return;
          const old = takeReplica(key, index);
          if (old) await stopReplica(old);
          const r = await createReplica(plan, index);
          addReplica(r);
          if (!(await waitReplicaReady(r, 30_000)))
            say(`warning: ${r.id} is not ready after 30 s; continuing the restart`);
        }
      }),
    ]);
  }

  function takeReplica(key: string, index: number): Replica | undefined {
    const list = replicas.get(key) ?? [];
    const r = list.find((x) => x.index === index);
    const rest = list.filter((x) => x.index !== index);
    if (rest.length > 0) replicas.set(key, rest);
    else replicas.delete(key);
    return r;
  }

  function addReplica(r: Replica): void {
    const list = replicas.get(r.key) ?? [];
    list.push(r);
    list.sort((a, b) => a.index - b.index);
    replicas.set(r.key, list);
  }

  async function createReplica(plan: ServicePlan, index: number): Promise<Replica> {
    const id = replicaId(plan, index);
    const [fnPort, opsPort, callPort] = [await allocatePort(), await allocatePort(), await allocatePort()];
    const ports = { fnPort, opsPort, callPort };
    const envOptions = {
      base: baseEnv(options.env),
      natsUrl,
      ...(config.natsToken ? { natsToken: config.natsToken } : {}),
      logLevel: options.env.FNMESH_LOG_LEVEL ?? 'info',
    };
    const [program, ...args] = plan.command;
    const fnLabel = `${id} fn`;
    const scLabel = `${id} sc`;
    const report = (level: 'info' | 'warn' | 'error', message: string): void =>
      say(level === 'info' ? message : `${level === 'warn' ? 'warning' : 'error'}: ${message}`);
    const r: Replica = {
      key: plan.key,
      index,
      id,
      plan,
      fnPort,
      opsPort,
      callPort,
      ready: false,
      pollGeneration: 0,
      stopping: false,
      fn: new Supervisor({
        label: fnLabel,
        command: program === 'node' ? process.execPath : program!,
        args,
        cwd: plan.cwd,
        env: functionProcessEnv(plan, id, ports, envOptions),
        stdout: prefixer.splitter(fnLabel, plan.key),
        stderr: prefixer.splitter(fnLabel, plan.key),
        report,
        graceMs: 5_000,
        onStart: () => pollReady(r),
      }),
      sc: new Supervisor({
        label: scLabel,
        command: process.execPath,
        args: [fnmeshBin, 'sidecar'],
        cwd: root,
        env: sidecarProcessEnv(plan, id, ports, envOptions),
        stdout: prefixer.splitter(scLabel, plan.key),
        stderr: prefixer.splitter(scLabel, plan.key),
        report,
        graceMs: drainTimeoutMs(plan) + 5_000,
        onStart: () => pollReady(r),
      }),
    };
    if (!existsSync(plan.cwd))
      say(`warning: ${id}: spec.local.cwd ${plan.cwd} does not exist (manifest ${plan.manifestFile ?? '?'})`);
    r.fn.start();
    r.sc.start();
    return r;
  }

  /** Polls the sidecar's /readyz until it answers 200; says so once per (re)start. */
  function pollReady(r: Replica): void {
    r.ready = false;
    const generation = ++r.pollGeneration;
    void (async () => {
      while (!r.stopping && !shuttingDown && generation === r.pollGeneration) {
        try {
          const res = await fetch(`http://127.0.0.1:${r.opsPort}/readyz`, { signal: AbortSignal.timeout(1_000) });
          await res.arrayBuffer();
          if (res.status === 200) {
            if (generation !== r.pollGeneration || r.stopping) return;
            r.ready = true;
            say(
              `${r.id} ready (function pid ${r.fn.pid ?? '-'}, sidecar pid ${r.sc.pid ?? '-'}, sidecar ops http://127.0.0.1:${r.opsPort})`,
            );
            return;
          }
        } catch {
          // not up yet
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
  }

  async function waitReplicaReady(r: Replica, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!r.ready && Date.now() < deadline && !shuttingDown) await new Promise((resolve) => setTimeout(resolve, 50));
    return r.ready;
  }

  async function stopReplica(r: Replica): Promise<void> {
    r.stopping = true;
    const sc = await r.sc.stop('SIGTERM');
    say(`${r.id} sidecar exited (${describeExit(sc)}); stopping its function`);
    await r.fn.stop('SIGTERM');
    usedPorts.delete(r.fnPort);
    usedPorts.delete(r.opsPort);
    usedPorts.delete(r.callPort);
    say(`${r.id} stopped`);
  }

  schedule();

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
      const all = [...replicas.values()].flat();
      const gwReady = gateway.readiness();
      waiting = all.filter((r) => !r.ready).map((r) => r.id);
      const settled = latest !== undefined && !reconciling && gwReady.ready;
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
        natsUrl,
        !config.natsServers,
        latest ?? [],
        replicas,
        token,
        new Set(waiting),
        corsSummary(config.corsOrigins, config.corsCredentials),
      ),
    );
  })();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      shuttingDown = true;
      say('stopping: sidecars first (they drain in-flight calls), then functions, then the gateway');
      await source.stop().catch(() => undefined);
      await reconciling?.catch(() => undefined);
      const all = [...replicas.values()].flat();
      replicas.clear();
      await Promise.all(all.map((r) => stopReplica(r)));
      await gateway.stop();
      say('stopped');
    })();
    return stopping;
  };

  return { gatewayUrl, natsUrl, stop };
}

function banner(
  gatewayUrl: string,
  natsUrl: string,
  embedded: boolean,
  services: FunctionService[],
  replicas: Map<string, Replica[]>,
  token: string | undefined,
  notReady: Set<string>,
  browsers: string,
): string {
  const lines: string[] = [
    '',
    'fnmesh local is ready',
    `  gateway   ${gatewayUrl}   (POST /v1/api/{namespace}/functions/{service}/{function})`,
    `  broker    ${natsUrl}${embedded ? '   (embedded)' : ''}`,
    browsers,
    '  services',
  ];
  for (const fs of services) {
    const key = `${fs.metadata.namespace}/${fs.metadata.name}`;
    const list = replicas.get(key) ?? [];
    const fns = fs.spec.functions.map((f) => `${f.name}${f.rule ? ` (${f.rule.rule})` : ''}`).join(', ');
    lines.push(
      `    ${key.padEnd(24)} ${fs.spec.local ? `${list.length} replica(s): ${list.map((r) => (notReady.has(r.id) ? `${r.id} (not ready)` : r.id)).join(' ') || '-'}` : 'rules only (no spec.local)'}`,
    );
    if (fns) lines.push(`    ${''.padEnd(24)} functions: ${fns}`);
  }
  if (services.length === 0)
    lines.push('    (none: see the manifest errors above, or give folders that hold FunctionService YAML)');
  const example = exampleCall(services, replicas);
  if (example) {
    lines.push(
      '',
      'Call a function (no token needed: its rule is allow):',
      `curl -s -X POST ${gatewayUrl}/v1/api/${example.namespace}/functions/${example.service}/${example.fn} -H 'content-type: application/json' -d '${JSON.stringify({ params: example.params })}'`,
    );
  } else {
    lines.push('', 'No running function has an allow rule to show a ready-to-paste call.');
  }
  const signedIn = services.find(
    (fs) => fs.metadata.name === 'greeter' && fs.spec.functions.some((f) => f.name === 'whoami'),
  );
  if (token && signedIn && (replicas.get(`${signedIn.metadata.namespace}/greeter`) ?? []).length > 0) {
    lines.push(
      '',
      `A signed-in call (a token for user "ada", role admin, valid 8 h, signed with this run's random secret; set FNMESH_JWT_SECRET to use yours):`,
      `  curl -s -X POST ${gatewayUrl}/v1/api/${signedIn.metadata.namespace}/functions/greeter/whoami -H 'content-type: application/json' -H 'authorization: Bearer ${token}' -d '{}'`,
    );
  }
  lines.push('', 'Edit a manifest and the mesh follows. Ctrl-C stops everything.', '');
  return lines.join('\n');
}

function exampleCall(
  services: FunctionService[],
  replicas: Map<string, Replica[]>,
): { namespace: string; service: string; fn: string; params: unknown } | undefined {
  const candidates: { namespace: string; service: string; fn: string; params: unknown }[] = [];
  for (const fs of services) {
    if ((replicas.get(`${fs.metadata.namespace}/${fs.metadata.name}`) ?? []).length === 0) continue;
    for (const f of fs.spec.functions) {
      if (f.rule?.rule !== 'allow' || f.name === 'default') continue;
      const params =
        fs.metadata.name === 'greeter' && f.name === 'hello'
          ? { name: 'Ada' }
          : fs.metadata.name === 'text'
            ? { text: 'hello mesh' }
            : {};
      candidates.push({ namespace: fs.metadata.namespace, service: fs.metadata.name, fn: f.name, params });
    }
  }
  return candidates.find((c) => c.service === 'greeter' && c.fn === 'hello') ?? candidates[0];
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
