import { loadGatewayConfig } from '../gateway';
import { localGatewayEnv } from './gateway-env';
import { DEV_CORS_ORIGINS } from './dev-origins';

describe('the local mesh’s gateway environment', () => {
  test('listens on loopback when FNMESH_LISTEN is unset or empty, never on every interface', () => {
    for (const env of [{}, { FNMESH_LISTEN: '' }, { FNMESH_LISTEN: '  ' }]) {
      expect(loadGatewayConfig(localGatewayEnv(env)).listen).toEqual({ host: '127.0.0.1', port: 8080 });
    }
  });
  test('puts the ops listener on loopback too unless the user chose another address', () => {
    expect(loadGatewayConfig(localGatewayEnv({})).opsListen).toEqual({ host: '127.0.0.1', port: 9091 });
    expect(loadGatewayConfig(localGatewayEnv({ FNMESH_OPS_LISTEN: ' ' })).opsListen).toEqual({
      host: '127.0.0.1',
      port: 9091,
    });
    expect(loadGatewayConfig(localGatewayEnv({ FNMESH_OPS_LISTEN: '127.0.0.1:0' })).opsListen).toEqual({
      host: '127.0.0.1',
      port: 0,
    });
  });
  test('keeps an address the user gave', () => {
    expect(loadGatewayConfig(localGatewayEnv({ FNMESH_LISTEN: '0.0.0.0:9000' })).listen).toEqual({
      host: '0.0.0.0',
      port: 9000,
    });
  });
  test('allows the dev origins unless the user set FNMESH_CORS_ORIGINS; an empty list allows none', () => {
    expect(localGatewayEnv({}).FNMESH_CORS_ORIGINS).toBe(DEV_CORS_ORIGINS);
    expect(loadGatewayConfig(localGatewayEnv({ FNMESH_CORS_ORIGINS: '' })).corsOrigins).toEqual([]);
    expect(loadGatewayConfig(localGatewayEnv({ FNMESH_CORS_ORIGINS: 'https://a.example' })).corsOrigins).toEqual([
      'https://a.example',
    ]);
  });
});
