import { ConfigError, DEFAULT_OUTLIER_DETECTION } from './common';
import { loadSidecarConfig } from './config';

const base = { FNMESH_SERVICE: 'orders', FNMESH_NATS_URL: 'nats://a:4222,nats://b:4222' };

describe('loadSidecarConfig', () => {
  test('defaults', () => {
    const c = loadSidecarConfig(base);
    expect(c).toMatchObject({
      namespace: 'default',
      service: 'orders',
      functions: [],
      natsServers: ['nats://a:4222', 'nats://b:4222'],
      functionPort: 8080,
      healthPath: '/healthz',
      concurrency: 64,
      queueLength: 64,
      outlierDetection: DEFAULT_OUTLIER_DETECTION,
      timeoutMs: 10_000,
      opsListen: { host: '0.0.0.0', port: 9090 },
      callListen: { host: '127.0.0.1', port: 3500 },
      drainTimeoutMs: 30_000,
      logLevel: 'info',
    });
    expect(c.replicaId).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(c.natsToken).toBeUndefined();
  });

  test('reads every variable', () => {
    const c = loadSidecarConfig({
      ...base,
      FNMESH_NAMESPACE: 'shop',
      FNMESH_FUNCTIONS: 'create, list ,get_one',
      FNMESH_NATS_TOKEN: 't',
      FNMESH_FUNCTION_PORT: '9000',
      FNMESH_HEALTH_PATH: '/ready',
      FNMESH_CONCURRENCY: '8',
      FNMESH_QUEUE_LENGTH: '0',
      FNMESH_OUTLIER_DETECTION: '{"consecutiveFailures": 3, "failureRatio": 0.25, "maxEjectionPercent": 34}',
      FNMESH_TIMEOUT_MS: '2500',
      FNMESH_OPS_LISTEN: '9191',
      FNMESH_CALL_LISTEN: 'localhost:0',
      FNMESH_DRAIN_TIMEOUT_MS: '100',
      FNMESH_REPLICA_ID: 'orders-7d9f-x2',
      FNMESH_LOG_LEVEL: 'debug',
    });
    expect(c).toMatchObject({
      namespace: 'shop',
      functions: ['create', 'list', 'get_one'],
      natsToken: 't',
      functionPort: 9000,
      healthPath: '/ready',
      concurrency: 8,
      queueLength: 0,
      outlierDetection: {
        ...DEFAULT_OUTLIER_DETECTION,
        consecutiveFailures: 3,
        failureRatio: 0.25,
        maxEjectionPercent: 34,
      },
      timeoutMs: 2500,
      opsListen: { host: '0.0.0.0', port: 9191 },
      callListen: { host: 'localhost', port: 0 },
      drainTimeoutMs: 100,
      replicaId: 'orders-7d9f-x2',
      logLevel: 'debug',
    });
  });

  test.each([
    [{ FNMESH_SERVICE: undefined }, /FNMESH_SERVICE is required/],
    [{ FNMESH_SERVICE: 'Orders' }, /FNMESH_SERVICE="Orders"/],
    [{ FNMESH_NAMESPACE: 'a.b' }, /FNMESH_NAMESPACE="a.b"/],
    [{ FNMESH_NATS_URL: undefined }, /FNMESH_NATS_URL is required/],
    [{ FNMESH_NATS_URL: 'http://x' }, /FNMESH_NATS_URL="http:\/\/x"/],
    [{ FNMESH_FUNCTIONS: 'ok,bad.name' }, /FNMESH_FUNCTIONS: "bad.name"/],
    [{ FNMESH_FUNCTION_PORT: '70000' }, /FNMESH_FUNCTION_PORT="70000"/],
    [{ FNMESH_CONCURRENCY: '0' }, /FNMESH_CONCURRENCY="0"/],
    [{ FNMESH_QUEUE_LENGTH: '-1' }, /FNMESH_QUEUE_LENGTH="-1"/],
    [{ FNMESH_OUTLIER_DETECTION: '{consecutiveFailures: 1}' }, /FNMESH_OUTLIER_DETECTION is not valid JSON/],
    [{ FNMESH_OUTLIER_DETECTION: '[1]' }, /FNMESH_OUTLIER_DETECTION must be a JSON object/],
    [
      { FNMESH_OUTLIER_DETECTION: '{"consecutive": 1}' },
      /FNMESH_OUTLIER_DETECTION: "consecutive" is not a field.*consecutiveFailures/,
    ],
    [
      { FNMESH_OUTLIER_DETECTION: '{"failureRatio": 1.5}' },
      /FNMESH_OUTLIER_DETECTION: failureRatio is 1.5; it accepts a number from 0 to 1/,
    ],
    [
      { FNMESH_OUTLIER_DETECTION: '{"minCalls": 2.5}' },
      /FNMESH_OUTLIER_DETECTION: minCalls is 2.5; it accepts a whole number/,
    ],
    [{ FNMESH_OUTLIER_DETECTION: '{"windowMs": "10s"}' }, /FNMESH_OUTLIER_DETECTION: windowMs is "10s"/],
    [{ FNMESH_TIMEOUT_MS: '1s' }, /FNMESH_TIMEOUT_MS="1s"/],
    [{ FNMESH_HEALTH_PATH: 'healthz' }, /FNMESH_HEALTH_PATH="healthz"/],
    [{ FNMESH_CALL_LISTEN: '0.0.0.0:3500' }, /FNMESH_CALL_LISTEN="0.0.0.0:3500".*loopback/],
    [{ FNMESH_CALL_LISTEN: '3500' }, /FNMESH_CALL_LISTEN="3500".*loopback/],
    [{ FNMESH_REPLICA_ID: 'a.b' }, /FNMESH_REPLICA_ID="a.b"/],
    [{ FNMESH_LOG_LEVEL: 'loud' }, /FNMESH_LOG_LEVEL="loud"/],
    [{ FNMESH_NATS_PASSWORD: 'p' }, /FNMESH_NATS_USER/],
  ])('%o → ConfigError naming the variable', (env, message) => {
    const run = (): unknown => loadSidecarConfig({ ...base, ...env });
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(message);
  });
});
