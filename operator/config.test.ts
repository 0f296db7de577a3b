import { ConfigError } from '../common/errors';
import { loadOperatorConfig } from './config';

const base = { FNMESH_SIDECAR_IMAGE: 'ghcr.io/fnmesh/fnmesh:0.1.0', FNMESH_SIDECAR_NATS_URL: 'nats://nats:4222' };

describe('loadOperatorConfig', () => {
  test('defaults', () => {
    expect(loadOperatorConfig(base)).toEqual({
      sidecar: {
        image: 'ghcr.io/fnmesh/fnmesh:0.1.0',
        natsUrl: 'nats://nats:4222',
        resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } },
        opsPort: 9090,
        callPort: 3500,
        drainTimeoutMs: 30_000,
        natsAuth: 'jwt',
      },
      nats: {
        trustSecret: { namespace: 'fnmesh-system', name: 'fnmesh-nats-trust' },
        createTrust: true,
        accountSecret: { namespace: 'fnmesh-system', name: 'fnmesh-nats-account' },
        userTtlMs: 3_600_000,
        gatewayCreds: { namespace: 'fnmesh-system', name: 'fnmesh-gateway-nats' },
      },
      listen: { host: '0.0.0.0', port: 8081 },
      leaderElection: {
        enabled: true,
        leaseName: 'fnmesh-operator',
        leaseNamespace: 'fnmesh-system',
        leaseDurationMs: 15_000,
        renewDeadlineMs: 10_000,
        retryPeriodMs: 2_000,
      },
      concurrentReconciles: 16,
      apiConnections: 16,
      resyncMs: 300_000,
      statusProgressIntervalMs: 5_000,
      logLevel: 'info',
    });
  });

  test('reads the NATS credentials settings; a named trust Secret is never created', () => {
    const c = loadOperatorConfig({
      ...base,
      POD_NAMESPACE: 'mesh',
      FNMESH_NATS_TRUST_SECRET: 'my-trust',
      FNMESH_NATS_ACCOUNT_SECRET: 'my-account',
      FNMESH_NATS_USER_TTL_MS: '600000',
      FNMESH_GATEWAY_NATS_CREDS_SECRET: 'edge/gw-creds',
    });
    expect(c.nats).toEqual({
      trustSecret: { namespace: 'mesh', name: 'my-trust' },
      createTrust: false,
      accountSecret: { namespace: 'mesh', name: 'my-account' },
      userTtlMs: 600_000,
      gatewayCreds: { namespace: 'edge', name: 'gw-creds' },
    });
    expect(loadOperatorConfig({ ...base, FNMESH_NATS_TRUST_NAMESPACE: 'vault' }).nats?.trustSecret.namespace).toBe(
      'vault',
    );
    expect(loadOperatorConfig({ ...base, FNMESH_NATS_AUTH: 'none' }).nats).toBeUndefined();
  });

  test.each([
    [{ FNMESH_NATS_AUTH: 'token' }, /FNMESH_NATS_AUTH/],
    [{ FNMESH_NATS_USER_TTL_MS: '100' }, /FNMESH_NATS_USER_TTL_MS/],
    [{ FNMESH_GATEWAY_NATS_CREDS_SECRET: 'just-a-name' }, /NAMESPACE\/NAME/],
    [{ FNMESH_SIDECAR_NATS_TOKEN_SECRET: 'nats-auth/token' }, /FNMESH_NATS_AUTH=none/],
  ])('refuses bad NATS credentials settings: %j', (env, message) => {
    expect(() => loadOperatorConfig({ ...base, ...env })).toThrow(message);
  });

  test('reads every variable', () => {
    const c = loadOperatorConfig({
      ...base,
      FNMESH_SIDECAR_NATS_URL: 'nats://a:4222, nats://b:4222',
      FNMESH_SIDECAR_NATS_TOKEN_SECRET: 'nats-auth/token',
      FNMESH_NATS_AUTH: 'none',
      FNMESH_SIDECAR_CPU_REQUEST: '0.1',
      FNMESH_SIDECAR_MEMORY_REQUEST: '32Mi',
      FNMESH_SIDECAR_CPU_LIMIT: '1',
      FNMESH_SIDECAR_MEMORY_LIMIT: 'none',
      FNMESH_SIDECAR_OPS_PORT: '9191',
      FNMESH_SIDECAR_CALL_PORT: '3600',
      FNMESH_SIDECAR_DRAIN_TIMEOUT_MS: '5000',
      FNMESH_WATCH_NAMESPACE: 'team-a',
      FNMESH_KUBECONFIG: '/etc/fnmesh/kubeconfig',
      FNMESH_OPERATOR_LISTEN: '127.0.0.1:0',
      FNMESH_LEADER_ELECT: 'false',
      FNMESH_LEASE_NAME: 'my-lease',
      FNMESH_LEASE_NAMESPACE: 'ops',
      FNMESH_LEASE_DURATION_MS: '6000',
      FNMESH_RENEW_DEADLINE_MS: '4000',
      FNMESH_RETRY_PERIOD_MS: '1000',
      FNMESH_CONCURRENT_RECONCILES: '32',
      FNMESH_KUBE_API_CONNECTIONS: '8',
      FNMESH_RESYNC_MS: '0',
      FNMESH_STATUS_PROGRESS_INTERVAL_MS: '0',
      FNMESH_LOG_LEVEL: 'debug',
    });
    expect(c).toEqual({
      sidecar: {
        image: 'ghcr.io/fnmesh/fnmesh:0.1.0',
        natsUrl: 'nats://a:4222,nats://b:4222',
        natsTokenSecret: { name: 'nats-auth', key: 'token' },
        resources: { requests: { cpu: '0.1', memory: '32Mi' }, limits: { cpu: '1' } },
        opsPort: 9191,
        callPort: 3600,
        drainTimeoutMs: 5000,
        natsAuth: 'none',
      },
      kubeconfig: '/etc/fnmesh/kubeconfig',
      watchNamespace: 'team-a',
      listen: { host: '127.0.0.1', port: 0 },
      leaderElection: {
        enabled: false,
        leaseName: 'my-lease',
        leaseNamespace: 'ops',
        leaseDurationMs: 6000,
        renewDeadlineMs: 4000,
        retryPeriodMs: 1000,
      },
      concurrentReconciles: 32,
      apiConnections: 8,
      resyncMs: 0,
      statusProgressIntervalMs: 0,
      logLevel: 'debug',
    });
  });

  test('the lease namespace defaults to the pod namespace', () => {
    expect(loadOperatorConfig({ ...base, POD_NAMESPACE: 'fnmesh' }).leaderElection.leaseNamespace).toBe('fnmesh');
    expect(
      loadOperatorConfig({ ...base, POD_NAMESPACE: 'fnmesh', FNMESH_LEASE_NAMESPACE: 'other' }).leaderElection
        .leaseNamespace,
    ).toBe('other');
  });

  test.each<[string, Record<string, string>, string]>([
    ['no image', { FNMESH_SIDECAR_IMAGE: '' }, 'FNMESH_SIDECAR_IMAGE is required'],
    ['no NATS URL', { FNMESH_SIDECAR_NATS_URL: '' }, 'FNMESH_SIDECAR_NATS_URL is required'],
    ['a bad NATS URL', { FNMESH_SIDECAR_NATS_URL: 'http://x' }, 'FNMESH_SIDECAR_NATS_URL="http://x" is not valid'],
    [
      'a token secret without a key',
      { FNMESH_SIDECAR_NATS_TOKEN_SECRET: 'nats-auth' },
      'FNMESH_SIDECAR_NATS_TOKEN_SECRET="nats-auth" is not valid',
    ],
    ['a bad quantity', { FNMESH_SIDECAR_MEMORY_LIMIT: '128MB' }, 'FNMESH_SIDECAR_MEMORY_LIMIT="128MB" is not valid'],
    ['a bad port', { FNMESH_SIDECAR_OPS_PORT: '70000' }, 'FNMESH_SIDECAR_OPS_PORT="70000" is not valid'],
    [
      'one port for both',
      { FNMESH_SIDECAR_OPS_PORT: '3500' },
      'FNMESH_SIDECAR_OPS_PORT and FNMESH_SIDECAR_CALL_PORT are both 3500',
    ],
    ['a bad watch namespace', { FNMESH_WATCH_NAMESPACE: 'Team_A' }, 'FNMESH_WATCH_NAMESPACE="Team_A" is not valid'],
    ['a bad listen address', { FNMESH_OPERATOR_LISTEN: 'x:y' }, 'FNMESH_OPERATOR_LISTEN="x:y" is not valid'],
    ['a bad boolean', { FNMESH_LEADER_ELECT: 'maybe' }, 'FNMESH_LEADER_ELECT="maybe" is not valid'],
    ['a bad lease namespace', { FNMESH_LEASE_NAMESPACE: '-x' }, 'FNMESH_LEASE_NAMESPACE="-x" is not valid'],
    [
      'a renew deadline past the lease',
      { FNMESH_RENEW_DEADLINE_MS: '15000' },
      'FNMESH_RENEW_DEADLINE_MS (15000) must be less than FNMESH_LEASE_DURATION_MS',
    ],
    [
      'a retry period too close to the deadline',
      { FNMESH_RETRY_PERIOD_MS: '9000' },
      'FNMESH_RETRY_PERIOD_MS (9000) is too long',
    ],
    ['zero workers', { FNMESH_CONCURRENT_RECONCILES: '0' }, 'FNMESH_CONCURRENT_RECONCILES="0" is not valid'],
    ['a bad log level', { FNMESH_LOG_LEVEL: 'loud' }, 'FNMESH_LOG_LEVEL="loud" is not valid'],
  ])('refuses %s, naming the variable', (_name, env, message) => {
    expect(() => loadOperatorConfig({ ...base, ...env })).toThrow(ConfigError);
    expect(() => loadOperatorConfig({ ...base, ...env })).toThrow(message);
  });
});
