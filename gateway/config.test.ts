import { ConfigError } from '../common';
import { loadGatewayConfig } from './config';

describe('loadGatewayConfig', () => {
  it('has defaults', () => {
    const c = loadGatewayConfig({});
    expect(c).toMatchObject({
      listen: { host: '0.0.0.0', port: 8080 },
      opsListen: { host: '0.0.0.0', port: 9091 },
      front: {
        maxHeaderBytes: 16384,
        headersTimeoutMs: 10000,
        receiveTimeoutMs: 30000,
        keepAliveTimeoutMs: 65000,
        maxConnections: 10000,
      },
      broker: { host: '127.0.0.1', port: 4222 },
      manifests: [],
      jwt: { requireExp: true, clockToleranceSec: 5 },
      maxParamsDepth: 64,
      maxTokenBytes: 8192,
      maxTimeoutMs: 60000,
      corsOrigins: [],
      corsCredentials: true,
      exposeRuleReasons: false,
      logLevel: 'info',
    });
    expect(c.natsServers).toBeUndefined();
    expect(c.defaultRule).toBeUndefined();
    expect(c.adminToken).toBeUndefined();
    // unset: the default, fitted to the broker's max payload at connect (limits.ts)
    expect(c.maxBodyBytes).toBeUndefined();
    expect(loadGatewayConfig({ FNMESH_MAX_BODY_BYTES: '5000' }).maxBodyBytes).toBe(5000);
  });
  it('reads every setting', () => {
    const c = loadGatewayConfig({
      FNMESH_LISTEN: '127.0.0.1:0',
      FNMESH_OPS_LISTEN: '9090',
      FNMESH_NATS_URL: 'nats://a:4222,nats://b:4222',
      FNMESH_NATS_TOKEN: 't',
      FNMESH_MANIFESTS: 'a.yaml, dir/',
      FNMESH_JWT_SECRET: 's1,s2',
      FNMESH_JWT_ISSUER: 'iss',
      FNMESH_JWT_AUDIENCE: 'aud',
      FNMESH_JWT_REQUIRE_EXP: 'false',
      FNMESH_JWT_CLOCK_TOLERANCE_SEC: '30',
      FNMESH_DEFAULT_RULE: '{"rule":"authenticated"}',
      FNMESH_CORS_ORIGINS: 'https://app.example.com,http://localhost:3000,http://127.0.0.1:*',
      FNMESH_CORS_CREDENTIALS: 'false',
      FNMESH_EXPOSE_RULE_REASONS: 'true',
      FNMESH_ADMIN_TOKEN: 'x'.repeat(32),
      FNMESH_MAX_HEADER_BYTES: '8192',
      FNMESH_HEADERS_TIMEOUT_MS: '2000',
      FNMESH_RECEIVE_TIMEOUT_MS: '5000',
      FNMESH_KEEP_ALIVE_TIMEOUT_MS: '4000',
      FNMESH_MAX_CONNECTIONS: '50',
    });
    expect(c).toMatchObject({
      listen: { host: '127.0.0.1', port: 0 },
      opsListen: { host: '0.0.0.0', port: 9090 },
      natsServers: ['nats://a:4222', 'nats://b:4222'],
      natsToken: 't',
      manifests: ['a.yaml', 'dir/'],
      jwt: { secrets: ['s1', 's2'], issuer: 'iss', audience: 'aud', requireExp: false, clockToleranceSec: 30 },
      defaultRule: { rule: 'authenticated' },
      corsOrigins: ['https://app.example.com', 'http://localhost:3000', 'http://127.0.0.1:*'],
      corsCredentials: false,
      exposeRuleReasons: true,
      adminToken: 'x'.repeat(32),
      front: {
        maxHeaderBytes: 8192,
        headersTimeoutMs: 2000,
        receiveTimeoutMs: 5000,
        keepAliveTimeoutMs: 4000,
        maxConnections: 50,
      },
    });
  });
  it.each([
    [{ FNMESH_DEFAULT_RULE: '{"rule":"maybe"}' }, /FNMESH_DEFAULT_RULE is not a valid rule/],
    [{ FNMESH_DEFAULT_RULE: '{nope' }, /FNMESH_DEFAULT_RULE is not valid JSON/],
    [{ FNMESH_MAX_BODY_BYTES: '1MB' }, /FNMESH_MAX_BODY_BYTES="1MB"/],
    [{ FNMESH_ADMIN_TOKEN: 'short' }, /FNMESH_ADMIN_TOKEN is 5 characters long: use at least 32/],
    [
      { FNMESH_HEADERS_TIMEOUT_MS: '20000', FNMESH_RECEIVE_TIMEOUT_MS: '10000' },
      /FNMESH_HEADERS_TIMEOUT_MS=20000 is longer than FNMESH_RECEIVE_TIMEOUT_MS=10000/,
    ],
    [{ FNMESH_MAX_HEADER_BYTES: '100' }, /FNMESH_MAX_HEADER_BYTES="100"/],
    [{ FNMESH_JWT_REQUIRE_EXP: 'maybe' }, /FNMESH_JWT_REQUIRE_EXP="maybe".*true or false/],
    [{ FNMESH_JWT_CLOCK_TOLERANCE_SEC: '7200' }, /FNMESH_JWT_CLOCK_TOLERANCE_SEC="7200".*0 to 3600/],
    [{ FNMESH_CORS_ORIGINS: 'https://a.com/' }, /FNMESH_CORS_ORIGINS: "https:\/\/a.com\/"/],
    [{ FNMESH_CORS_ORIGINS: '*,https://a.com' }, /use "\*" alone/],
    [{ FNMESH_CORS_ORIGINS: 'http://*.a.com' }, /FNMESH_CORS_ORIGINS: "http:\/\/\*\.a\.com".*http:\/\/localhost:\*/],
    [
      { FNMESH_CORS_ORIGINS: '*', FNMESH_CORS_CREDENTIALS: 'true' },
      /FNMESH_CORS_CREDENTIALS=true cannot be used with FNMESH_CORS_ORIGINS="\*".*list the origins in FNMESH_CORS_ORIGINS/,
    ],
    [{ FNMESH_CORS_CREDENTIALS: 'sometimes' }, /FNMESH_CORS_CREDENTIALS="sometimes"/],
    [{ FNMESH_LISTEN: 'x:y' }, /FNMESH_LISTEN/],
    [{ FNMESH_NATS_URL: 'http://x' }, /FNMESH_NATS_URL/],
    [{ FNMESH_JWKS_URL: 'ftp://x' }, /FNMESH_JWKS_URL/],
    [{ FNMESH_LOG_LEVEL: 'loud' }, /FNMESH_LOG_LEVEL/],
  ])('rejects %j', (env, message) => {
    expect(() => loadGatewayConfig(env)).toThrow(ConfigError);
    expect(() => loadGatewayConfig(env)).toThrow(message);
  });
});

describe('FNMESH_CORS_CREDENTIALS', () => {
  test.each<[string, Record<string, string>, boolean]>([
    ['on by default for a list of origins', { FNMESH_CORS_ORIGINS: 'https://a.com' }, true],
    ['switched off for a list', { FNMESH_CORS_ORIGINS: 'https://a.com', FNMESH_CORS_CREDENTIALS: 'false' }, false],
    ['off with "*" when unset', { FNMESH_CORS_ORIGINS: '*' }, false],
    ['off with "*" when set false', { FNMESH_CORS_ORIGINS: '*', FNMESH_CORS_CREDENTIALS: 'false' }, false],
  ])('%s', (_name, env, credentials) => {
    expect(loadGatewayConfig(env).corsCredentials).toBe(credentials);
  });

  it("reads the embedded broker's JWT and TLS files, and refuses them with an external NATS or a token", () => {
    const env = { FNMESH_BROKER_OPERATOR: '/x/op.jwt', FNMESH_BROKER_ACCOUNTS: '/x/a.jwt,/x/b.jwt' };
    expect(loadGatewayConfig(env).brokerSecurity).toEqual({
      operator: '/x/op.jwt',
      accounts: ['/x/a.jwt', '/x/b.jwt'],
    });
    expect(loadGatewayConfig({}).brokerSecurity).toBeUndefined();
    expect(() => loadGatewayConfig({ ...env, FNMESH_NATS_URL: 'nats://h:4222' })).toThrow(
      'FNMESH_BROKER_OPERATOR, FNMESH_BROKER_ACCOUNTS configure the embedded broker, which does not run when FNMESH_NATS_URL is set',
    );
    expect(() => loadGatewayConfig({ ...env, FNMESH_NATS_TOKEN: 'tok' })).toThrow(
      'FNMESH_NATS_TOKEN and FNMESH_BROKER_OPERATOR are both set',
    );
  });
});
