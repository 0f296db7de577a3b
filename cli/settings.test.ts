/** The settings tables behind every subcommand: flags, help, defaults and errors agree with the loaders. */
import { ConfigError } from '../common/errors';
import type { Env, SettingsTable } from '../common/config';
import { loadGatewayConfig, type GatewayConfig } from '../gateway/config';
import { loadOperatorConfig, type OperatorConfig } from '../operator/config';
import { loadSidecarConfig, type SidecarConfig } from '../sidecar/config';
import { SETTINGS, flagKey, flagsToEnv, run } from './main';

const parts = Object.entries(SETTINGS) as [keyof typeof SETTINGS, SettingsTable][];

function help(part: string): Promise<string> {
  const out: string[] = [];
  const io = { env: {}, out: (t: string) => void out.push(t), err: (t: string) => void out.push(t) };
  return run([part, '--help'], io).then(() => out.join('').replace(/\s+/g, ' '));
}

describe.each(parts)('the %s settings', (part, table) => {
  const settings = Object.values(table);

  it('have one flag and one variable each, and each flag sets its variable', () => {
    expect(new Set(settings.map((s) => s.env)).size).toBe(settings.length);
    expect(new Set(settings.map((s) => flagKey(s.flag))).size).toBe(settings.length);
    for (const s of settings) {
      expect(s.flag).toMatch(/^--[a-z0-9-]+ <[^>]+>$/);
      expect(flagsToEnv({ [flagKey(s.flag)]: 'v' }, table, {})).toEqual({ [s.env]: 'v' });
    }
  });

  it(`are all in \`fnmesh ${part} --help\` with their variables and defaults`, async () => {
    const text = await help(part);
    for (const s of settings) {
      expect(text).toContain(s.flag);
      expect(text).toContain(`env ${s.env}`);
      if (s.default !== undefined) expect(text).toContain(`${s.env}; default: ${s.default})`);
      if (s.default === undefined && s.required !== undefined) expect(text).toContain(`${s.env}; required)`);
    }
  });
});

/** A value of each loaded config per setting that has a default: the loader's default. */
type Pickers<C> = Record<string, (c: C) => unknown>;
const loaders: {
  part: 'gateway' | 'sidecar' | 'operator';
  base: Env;
  load: (env: Env) => unknown;
  pick: Pickers<never>;
}[] = [
  {
    part: 'gateway',
    base: {},
    load: loadGatewayConfig,
    pick: {
      listen: (c: GatewayConfig) => c.listen,
      brokerHost: (c: GatewayConfig) => c.broker.host,
      brokerPort: (c: GatewayConfig) => c.broker.port,
      ruleSource: (c: GatewayConfig) => c.ruleSource,
      maxBodyBytes: (c: GatewayConfig) => c.maxBodyBytes,
      maxTimeoutMs: (c: GatewayConfig) => c.maxTimeoutMs,
      exposeRuleReasons: (c: GatewayConfig) => c.exposeRuleReasons,
      shutdownTimeoutMs: (c: GatewayConfig) => c.shutdownTimeoutMs,
      logLevel: (c: GatewayConfig) => c.logLevel,
    } satisfies Pickers<GatewayConfig>,
  },
  {
    part: 'sidecar',
    base: { FNMESH_SERVICE: 'orders', FNMESH_NATS_URL: 'nats://a:4222' },
    load: loadSidecarConfig,
    pick: {
      namespace: (c: SidecarConfig) => c.namespace,
      functionPort: (c: SidecarConfig) => c.functionPort,
      healthPath: (c: SidecarConfig) => c.healthPath,
      concurrency: (c: SidecarConfig) => c.concurrency,
      timeoutMs: (c: SidecarConfig) => c.timeoutMs,
      opsListen: (c: SidecarConfig) => c.opsListen,
      callListen: (c: SidecarConfig) => c.callListen,
      drainTimeoutMs: (c: SidecarConfig) => c.drainTimeoutMs,
      logLevel: (c: SidecarConfig) => c.logLevel,
    } satisfies Pickers<SidecarConfig>,
  },
  {
    part: 'operator',
    base: { FNMESH_SIDECAR_IMAGE: 'ghcr.io/fnmesh/fnmesh:0.1.0', FNMESH_SIDECAR_NATS_URL: 'nats://nats:4222' },
    load: loadOperatorConfig,
    pick: {
      sidecarOpsPort: (c: OperatorConfig) => c.sidecar.opsPort,
      sidecarCallPort: (c: OperatorConfig) => c.sidecar.callPort,
      sidecarCpuRequest: (c: OperatorConfig) => c.sidecar.resources.requests.cpu,
      sidecarMemoryRequest: (c: OperatorConfig) => c.sidecar.resources.requests.memory,
      sidecarCpuLimit: (c: OperatorConfig) => c.sidecar.resources.limits.cpu,
      sidecarMemoryLimit: (c: OperatorConfig) => c.sidecar.resources.limits.memory,
      sidecarDrainTimeoutMs: (c: OperatorConfig) => c.sidecar.drainTimeoutMs,
      listen: (c: OperatorConfig) => c.listen,
      leaderElect: (c: OperatorConfig) => c.leaderElection.enabled,
      leaseName: (c: OperatorConfig) => c.leaderElection.leaseName,
      leaseDurationMs: (c: OperatorConfig) => c.leaderElection.leaseDurationMs,
      renewDeadlineMs: (c: OperatorConfig) => c.leaderElection.renewDeadlineMs,
      retryPeriodMs: (c: OperatorConfig) => c.leaderElection.retryPeriodMs,
      concurrentReconciles: (c: OperatorConfig) => c.concurrentReconciles,
      kubeApiConnections: (c: OperatorConfig) => c.apiConnections,
      statusProgressIntervalMs: (c: OperatorConfig) => c.statusProgressIntervalMs,
      resyncMs: (c: OperatorConfig) => c.resyncMs,
      logLevel: (c: OperatorConfig) => c.logLevel,
    } satisfies Pickers<OperatorConfig>,
  },
];

describe.each(loaders)('the $part loader', ({ part, base, load, pick }) => {
  const table: SettingsTable = SETTINGS[part];

  it('uses the defaults its help shows', () => {
    const withDefault = Object.entries(table).filter(([, s]) => s.default !== undefined);
    expect(Object.keys(pick).sort()).toEqual(withDefault.map(([k]) => k).sort());
    const config = load(base) as never;
    for (const [key, s] of withDefault) expect(pick[key]!(config)).toEqual(s.parse(s.default!, s.env));
  });

  it('refuses a bad value of any setting with a ConfigError naming its variable', () => {
    const junk = '§ not valid §';
    let refused = 0;
    for (const s of Object.values(table)) {
      try {
        s.parse(junk, s.env);
        continue; // free text (a token, a file name): any value is one
      } catch {
        refused++;
      }
      const attempt = (): unknown => load({ ...base, [s.env]: junk });
      expect(attempt).toThrow(ConfigError);
      expect(attempt).toThrow(s.env);
    }
    expect(refused).toBeGreaterThan(Object.keys(table).length / 2);
  });
});

describe('fnmesh cluster', () => {
  it('exits 2 on a bad log level, naming the variable and the accepted values, before starting anything', async () => {
    const exit = jest.spyOn(process, 'exit').mockImplementation((code?: string | number | null) => {
      throw new Error(`exit ${code}`);
    });
    const stderr = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const io = { env: {}, out: () => undefined, err: () => undefined };
      await run(['cluster', '--log-level', 'loud'], io);
      expect(exit).toHaveBeenCalledWith(2);
      expect(stderr).toHaveBeenCalledWith(
        'fnmesh cluster: FNMESH_LOG_LEVEL="loud" is not valid: it accepts one of debug, info, warn, error, silent',
      );
    } finally {
      exit.mockRestore();
      stderr.mockRestore();
      process.exitCode = undefined;
    }
  });
});
