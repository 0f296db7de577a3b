import { objectKey, ownerKey, splitKey } from './keys';

const owner = (over: Record<string, unknown> = {}) => ({
  apiVersion: 'fnmesh.io/v1alpha1',
  kind: 'FunctionService',
  name: 'orders',
  controller: true,
  ...over,
});

describe('keys', () => {
  test.each<[string, Parameters<typeof objectKey>[0], string | undefined]>([
    ['a namespaced object', { metadata: { name: 'orders', namespace: 'shop' } }, 'shop/orders'],
    ['no namespace', { metadata: { name: 'orders' } }, undefined],
    ['no metadata', {}, undefined],
  ])('objectKey: %s', (_name, obj, key) => {
    expect(objectKey(obj)).toBe(key);
  });

  test.each<[string, Parameters<typeof ownerKey>[0], string | undefined]>([
    ['controlled by a FunctionService', { metadata: { namespace: 'shop', ownerReferences: [owner()] } }, 'shop/orders'],
    [
      'owned by a later version of the CRD',
      { metadata: { namespace: 'shop', ownerReferences: [owner({ apiVersion: 'fnmesh.io/v1' })] } },
      'shop/orders',
    ],
    [
      'owned but not controlled',
      { metadata: { namespace: 'shop', ownerReferences: [owner({ controller: false })] } },
      undefined,
    ],
    [
      'controlled by something else',
      { metadata: { namespace: 'shop', ownerReferences: [owner({ kind: 'ReplicaSet', apiVersion: 'apps/v1' })] } },
      undefined,
    ],
    ['no owners', { metadata: { namespace: 'shop' } }, undefined],
  ])('ownerKey: %s', (_name, obj, key) => {
    expect(ownerKey(obj)).toBe(key);
  });

  test('splitKey', () => {
    expect(splitKey('shop/orders')).toEqual({ namespace: 'shop', name: 'orders' });
    for (const bad of ['orders', '/orders', 'shop/', 'a/b/c'])
      expect(() => splitKey(bad)).toThrow('is not a namespace/name key');
  });
});
