import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { PodVolumes, type VolumeSource } from './pod-volumes';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-podvol-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const pod: V1Pod = {
  metadata: { name: 'web-1', namespace: 'shop', uid: 'uid-1' },
  spec: {
    containers: [
      {
        name: 'app',
        volumeMounts: [
          { name: 'sa', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' },
          { name: 'scratch', mountPath: '/work', subPath: 'a/b' },
        ],
      },
    ],
    volumes: [
      { name: 'sa', projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 1000 } }] } },
      { name: 'scratch', emptyDir: {} },
      { name: 'mem', emptyDir: { medium: 'Memory' } },
    ],
  },
};

/** The TokenRequests made, answering each with a numbered token valid for its expirationSeconds. */
function tokenSource(fail: () => boolean): VolumeSource & { requests: unknown[] } {
  const requests: unknown[] = [];
  return {
    requests,
    secret: () => Promise.resolve(undefined),
    configMap: () => Promise.resolve(undefined),
    token: (namespace, serviceAccount, request) => {
      requests.push({ namespace, serviceAccount, ...request });
      if (fail()) return Promise.reject(new Error('503 the API server is unavailable'));
      return Promise.resolve({
        token: `token-${requests.length}`,
        expiresAt: new Date(T0 + request.expirationSeconds * 1000),
      });
    },
  };
}
const T0 = Date.parse('2026-12-03T12:00:00Z');

describe('PodVolumes', () => {
  test('a token bound to the pod, kept until 80% of its lifetime, then renewed; a failed renewal keeps the valid one', async () => {
    let failing = false;
    const source = tokenSource(() => failing);
    const v = new PodVolumes(pod, dir, source, 'node-1');
    const tokenFile = path.join(v.volumeDir('sa'), 'token');

    expect((await v.sync(T0)).changed).toEqual(['sa']);
    expect(readFileSync(tokenFile, 'utf8')).toBe('token-1');
    expect(source.requests).toEqual([
      { namespace: 'shop', serviceAccount: 'default', expirationSeconds: 1000, podName: 'web-1', podUid: 'uid-1' },
    ]);
    expect((await v.sync(T0 + 799_000)).changed).toEqual([]);
    expect(source.requests).toHaveLength(1);

    failing = true;
    const kept = await v.sync(T0 + 800_000);
    expect(kept.plan.problems).toEqual([]);
    expect(readFileSync(tokenFile, 'utf8')).toBe('token-1');

    failing = false;
    expect((await v.sync(T0 + 801_000)).changed).toEqual(['sa']);
    expect(readFileSync(tokenFile, 'utf8')).toBe('token-3');
  });

  test('no token at all: the reason, and nothing mounted', async () => {
    const v = new PodVolumes(
      pod,
      dir,
      tokenSource(() => true),
      'node-1',
    );
    const { plan } = await v.sync(T0);
    expect(plan.problems[0]!.message).toBe(
      'MountVolume.SetUp failed for volume "sa" : cannot get a token for ServiceAccount shop/default: 503 the API server is unavailable',
    );
    expect(v.hostMounts('app')).toEqual([]);
  });

  test("the container's mounts on this machine; a missing emptyDir subPath is made; Memory dirs for the sandbox", async () => {
    const v = new PodVolumes(
      pod,
      dir,
      tokenSource(() => false),
      'node-1',
    );
    await v.sync(T0);
    expect(v.hostMounts('app')).toEqual([
      { source: v.volumeDir('scratch') + '/a/b', target: '/work', readOnly: false },
      { source: v.volumeDir('sa'), target: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
    ]);
    expect(statSync(path.join(v.volumeDir('scratch'), 'a', 'b')).isDirectory()).toBe(true);
    expect(v.memoryDirs()).toEqual([v.volumeDir('mem')]);
    v.remove();
    expect(existsSync(path.join(dir, 'volumes'))).toBe(false);
    // removed: a sync still under way writes nothing back
    await v.sync(T0);
    expect(existsSync(path.join(dir, 'volumes'))).toBe(false);
  });
});
