import type { V1Container, V1PodSpec } from '@kubernetes/client-node';
import { SIDECAR_CONTAINER_NAME, hasNativeSidecar, injectSidecar } from './sidecar-injection';

const sidecar: V1Container = { name: SIDECAR_CONTAINER_NAME, image: 'fnmesh:2', restartPolicy: 'Always' };
const fn: V1Container = { name: 'function', image: 'app:1' };
const migrate: V1Container = { name: 'migrate', image: 'app:1' };
const oldSidecar: V1Container = { name: SIDECAR_CONTAINER_NAME, image: 'fnmesh:1', restartPolicy: 'Always' };

describe('injectSidecar', () => {
  test.each<[string, V1PodSpec, string[], string[]]>([
    ['no init containers', { containers: [fn] }, [SIDECAR_CONTAINER_NAME], ['function']],
    [
      'other init containers: goes first',
      { containers: [fn], initContainers: [migrate] },
      [SIDECAR_CONTAINER_NAME, 'migrate'],
      ['function'],
    ],
    [
      'an older sidecar: replaced in place',
      { containers: [fn], initContainers: [migrate, oldSidecar] },
      ['migrate', SIDECAR_CONTAINER_NAME],
      ['function'],
    ],
    [
      'two sidecars: one kept',
      { containers: [fn], initContainers: [oldSidecar, migrate, oldSidecar] },
      [SIDECAR_CONTAINER_NAME, 'migrate'],
      ['function'],
    ],
    [
      'a sidecar among the main containers: moved',
      { containers: [fn, oldSidecar] },
      [SIDECAR_CONTAINER_NAME],
      ['function'],
    ],
  ])('%s', (_name, pod, init, main) => {
    const out = injectSidecar(pod, sidecar);
    expect(out.initContainers!.map((c) => c.name)).toEqual(init);
    expect(out.containers.map((c) => c.name)).toEqual(main);
    expect(out.initContainers!.find((c) => c.name === SIDECAR_CONTAINER_NAME)).toBe(sidecar);
    expect(hasNativeSidecar(out)).toBe(true);
  });

  test('is idempotent: injecting twice equals injecting once', () => {
    for (const pod of [{ containers: [fn] }, { containers: [fn, oldSidecar], initContainers: [migrate] }]) {
      const once = injectSidecar(pod, sidecar);
      expect(injectSidecar(once, sidecar)).toEqual(once);
    }
  });

  test('does not change its input', () => {
    const pod: V1PodSpec = { containers: [fn, oldSidecar], initContainers: [migrate] };
    const copy = structuredClone(pod);
    injectSidecar(pod, sidecar);
    expect(pod).toEqual(copy);
  });

  test('hasNativeSidecar sees a stripped or misplaced sidecar', () => {
    expect(hasNativeSidecar({ containers: [fn] })).toBe(false);
    expect(hasNativeSidecar({ containers: [fn, sidecar] })).toBe(false);
    expect(hasNativeSidecar({ containers: [fn], initContainers: [{ ...sidecar, restartPolicy: undefined }] })).toBe(
      false,
    );
  });
});
