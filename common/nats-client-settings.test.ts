import { readSettings } from './config';
import { NATS_CLIENT_ENV, NATS_CLIENT_SETTINGS, natsClientCredentials } from './nats-client-settings';
import { sidecarEnv } from './sidecar-env';

test('the creds and TLS files become connectNats options', () => {
  const s = readSettings(
    {
      FNMESH_NATS_CREDS: '/run/nats/nats.creds',
      FNMESH_NATS_TLS_CA: '/run/tls/ca.pem',
      FNMESH_NATS_TLS_CERT: '/run/tls/tls.crt',
      FNMESH_NATS_TLS_KEY: '/run/tls/tls.key',
    },
    NATS_CLIENT_SETTINGS,
  );
  expect(natsClientCredentials(s)).toEqual({
    credsFile: '/run/nats/nats.creds',
    tls: { caFile: '/run/tls/ca.pem', certFile: '/run/tls/tls.crt', keyFile: '/run/tls/tls.key' },
  });
  expect(natsClientCredentials(readSettings({}, NATS_CLIENT_SETTINGS))).toEqual({});
});

test('a client certificate without its key, or a key alone, is refused naming both variables', () => {
  expect(() => natsClientCredentials({ natsTlsCert: 'c.pem' })).toThrow(
    'FNMESH_NATS_TLS_CERT is set but FNMESH_NATS_TLS_KEY is not: a client certificate needs its key; set both or neither',
  );
  expect(() => natsClientCredentials({ natsTlsKey: 'k.pem' })).toThrow(
    /^FNMESH_NATS_TLS_KEY is set but FNMESH_NATS_TLS_CERT is not/,
  );
});

test("the sidecar's environment carries the creds and TLS paths under the same variables", () => {
  const fs = {
    metadata: { name: 'orders', namespace: 'shop' },
    spec: { port: 8080, healthPath: '/healthz', concurrency: 4, timeoutMs: 1000, functions: [{ name: 'get' }] },
  } as unknown as Parameters<typeof sidecarEnv>[0];
  const env = sidecarEnv(fs, {
    natsUrl: 'nats://nats:4222',
    opsListen: '0.0.0.0:9090',
    callListen: '127.0.0.1:8081',
    drainTimeoutMs: 1000,
    natsCredsFile: '/var/run/fnmesh/nats/nats.creds',
    natsTls: { caFile: '/var/run/fnmesh/tls/ca.crt' },
  });
  const byName = Object.fromEntries(env.map((e) => [e.name, e.value]));
  expect(byName[NATS_CLIENT_ENV.creds]).toBe('/var/run/fnmesh/nats/nats.creds');
  expect(byName[NATS_CLIENT_ENV.tlsCa]).toBe('/var/run/fnmesh/tls/ca.crt');
  expect(NATS_CLIENT_ENV.tlsCert in byName).toBe(false);
  const without = sidecarEnv(fs, { natsUrl: 'n', opsListen: 'o', callListen: 'c', drainTimeoutMs: 1 });
  expect(without.some((e) => e.name.startsWith('FNMESH_NATS_TLS') || e.name === NATS_CLIENT_ENV.creds)).toBe(false);
});
