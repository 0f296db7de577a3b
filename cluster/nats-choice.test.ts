import { ConfigError } from '../common/errors';
import { clusterNatsChoice } from './nats-choice';

const URL = 'FNMESH_NATS_URL';
const DIR = 'FNMESH_CLUSTER_NATS_TRUST_DIR';

describe("fnmesh cluster's NATS", () => {
  it('is the embedded broker when no server is named', () => {
    expect(clusterNatsChoice({})).toEqual({ kind: 'embedded' });
  });

  it('is your server, relayed to its one address, with the trust directory its users are minted from', () => {
    expect(clusterNatsChoice({ [URL]: 'nats://127.0.0.1:14222', [DIR]: '/tmp/t' })).toEqual({
      kind: 'external',
      url: 'nats://127.0.0.1:14222',
      host: '127.0.0.1',
      port: 14222,
      trustDir: '/tmp/t',
    });
    expect(clusterNatsChoice({ [URL]: 'localhost', [DIR]: '/tmp/t' })).toMatchObject({ host: 'localhost', port: 4222 });
  });

  it.each([
    [{ [URL]: 'nats://127.0.0.1:4222' }, `${DIR}=<dir>`],
    [{ [DIR]: '/tmp/t' }, `unset ${DIR}`],
    [{ [URL]: 'nats://a:4222,nats://b:4222', [DIR]: '/tmp/t' }, 'give one nats://host:port'],
    [{ [URL]: 'tls://a:4222', [DIR]: '/tmp/t' }, 'give a plain nats://host:port'],
    [{ [URL]: 'nats://me:pw@a:4222', [DIR]: '/tmp/t' }, 'remove the user and password'],
    [{ [URL]: 'http://a', [DIR]: '/tmp/t' }, 'nats://127.0.0.1:4222'],
  ])('refuses %j, naming the fix', (env, fix) => {
    expect(() => clusterNatsChoice(env)).toThrow(ConfigError);
    expect(() => clusterNatsChoice(env)).toThrow(fix);
  });
});
