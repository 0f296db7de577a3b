import { peerStates, servicePingSubject } from './replica-states';

const enc = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

describe('replica states from micro PING answers', () => {
  it('reads id and fnmesh.state, sorted by id; a replica without the key serves; not-micro answers are skipped', () => {
    expect(
      peerStates([
        enc({ id: 'b', metadata: { 'fnmesh.state': 'function-down' } }),
        new TextEncoder().encode('not json'),
        enc({ id: 'a', metadata: {} }),
        enc({ metadata: { 'fnmesh.state': 'serving' } }),
        enc({ id: 'c', metadata: { 'fnmesh.state': 7 } }),
      ]),
    ).toEqual([
      { id: 'a', state: 'serving' },
      { id: 'b', state: 'function-down' },
      { id: 'c', state: 'serving' },
    ]);
  });

  it('one entry per replica: a second answer of the same id (a handover in flight) replaces the first', () => {
    expect(
      peerStates([enc({ id: 'a', metadata: { 'fnmesh.state': 'draining' } }), enc({ id: 'a', metadata: {} })]),
    ).toEqual([{ id: 'a', state: 'serving' }]);
  });

  it("asks the service's own PING subject", () => {
    expect(servicePingSubject('fnmesh-default-greeter')).toBe('$SRV.PING.fnmesh-default-greeter');
  });
});
