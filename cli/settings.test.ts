/** The settings tables behind every subcommand: flags, help, defaults and errors agree with the loaders. */
import { ConfigError } from '../common/errors';
import type { Env, SettingsTable } from '../common/config';
import { loadGatewayConfig } from '../gateway/config';
import { loadOperatorConfig } from '../operator/config';
import { loadSidecarConfig } from '../sidecar/config';
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
      // a value in <>, or an optional [bool]: the bare flag (commander gives true) sets the variable to true
      expect(s.flag).toMatch(/^--[a-z0-9-]+ (<[^>]+>|\[bool\])$/);
      expect(flagsToEnv({ [flagKey(s.flag)]: 'v' }, table, {})).toEqual({ [s.env]: 'v' });
      if (s.flag.endsWith('[bool]')) {
        expect(flagsToEnv({ [flagKey(s.flag)]: true }, table, {})).toEqual({ [s.env]: 'true' });
        expect(s.read({ [s.env]: 'true' })).toBe(true);
      }
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

/** Where each setting that has a default lands in the loaded config (a dotted path). */
const loaders: {
  part: 'gateway' | 'sidecar' | 'operator';
  base: Env;
  load: (env: Env) => unknown;
  at: Record<string, string>;
}[] = [
  {
    part: 'gateway',
    base: {},
    load: loadGatewayConfig,
    at: {
      listen: 'listen',
      opsListen: 'opsListen',
      maxHeaderBytes: 'front.maxHeaderBytes',
      headersTimeoutMs: 'front.headersTimeoutMs',
      receiveTimeoutMs: 'front.receiveTimeoutMs',
      keepAliveTimeoutMs: 'front.keepAliveTimeoutMs',
      maxConnections: 'front.maxConnections',
      brokerHost: 'broker.host',
      brokerPort: 'broker.port',
      ruleSource: 'ruleSource',
      jwtRequireExp: 'jwt.requireExp',
      jwtClockToleranceSec: 'jwt.clockToleranceSec',
      maxParamsDepth: 'maxParamsDepth',
      maxTokenBytes: 'maxTokenBytes',
      maxTimeoutMs: 'maxTimeoutMs',
      exposeRuleReasons: 'exposeRuleReasons',
      shutdownTimeoutMs: 'shutdownTimeoutMs',
      logLevel: 'logLevel',
    },
  },
  {
    part: 'sidecar',
    base: { FNMESH_SERVICE: 'orders', FNMESH_NATS_URL: 'nats://a:4222' },
    load: loadSidecarConfig,
    at: {
      namespace: 'namespace',
      functionPort: 'functionPort',
      healthPath: 'healthPath',
      concurrency: 'concurrency',
      queueLength: 'queueLength',
      timeoutMs: 'timeoutMs',
      opsListen: 'opsListen',
      callListen: 'callListen',
      drainTimeoutMs: 'drainTimeoutMs',
      idleGcMs: 'idleGcMs',
      logLevel: 'logLevel',
    },
  },
  {
    part: 'operator',
    base: { FNMESH_SIDECAR_IMAGE: 'ghcr.io/fnmesh/fnmesh:0.1.0', FNMESH_SIDECAR_NATS_URL: 'nats://nats:4222' },
    load: loadOperatorConfig,
    at: {
      sidecarOpsPort: 'sidecar.opsPort',
      sidecarCallPort: 'sidecar.callPort',
      sidecarCpuRequest: 'sidecar.resources.requests.cpu',
      sidecarMemoryRequest: 'sidecar.resources.requests.memory',
      sidecarCpuLimit: 'sidecar.resources.limits.cpu',
      sidecarMemoryLimit: 'sidecar.resources.limits.memory',
      sidecarDrainTimeoutMs: 'sidecar.drainTimeoutMs',
      natsAuth: 'sidecar.natsAuth',
      natsAccountSecret: 'nats.accountSecret.name',
      natsUserTtlMs: 'nats.userTtlMs',
      listen: 'listen',
      leaderElect: 'leaderElection.enabled',
      leaseName: 'leaderElection.leaseName',
      leaseDurationMs: 'leaderElection.leaseDurationMs',
      renewDeadlineMs: 'leaderElection.renewDeadlineMs',
      retryPeriodMs: 'leaderElection.retryPeriodMs',
      concurrentReconciles: 'concurrentReconciles',
      kubeApiConnections: 'apiConnections',
      statusProgressIntervalMs: 'statusProgressIntervalMs',
      resyncMs: 'resyncMs',
      logLevel: 'logLevel',
    },
  },
];

describe.each(loaders)('the $part loader', ({ part, base, load, at }) => {
  const table: SettingsTable = SETTINGS[part];

  it('uses the defaults its help shows', () => {
    const withDefault = Object.entries(table).filter(([, s]) => s.default !== undefined);
    expect(Object.keys(at).sort()).toEqual(withDefault.map(([k]) => k).sort());
    const config = load(base);
    const get = (path: string): unknown =>
      path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], config);
    for (const [key, s] of withDefault) expect(get(at[key]!)).toEqual(s.parse(s.default!, s.env));
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
