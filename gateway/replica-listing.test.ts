import { withReplicaStates } from './replica-listing';

describe('the listing with replica states', () => {
  it('adds each service its replicas, and says why when they could not be asked', async () => {
    const listed = await withReplicaStates(
      [
        { namespace: 'default', name: 'greeter', functions: [] },
        { namespace: 'default', name: 'text', functions: [] },
      ],
      async (_ns, svc) => {
        if (svc === 'text') throw new Error('connection closed');
        return [{ id: 'greeter-0', state: 'serving' }];
      },
    );
    expect(listed).toEqual([
      { namespace: 'default', name: 'greeter', functions: [], replicas: [{ id: 'greeter-0', state: 'serving' }] },
      {
        namespace: 'default',
        name: 'text',
        functions: [],
        replicas: [],
        replicasUnknown: 'the replicas could not be asked over NATS: connection closed',
      },
    ]);
  });
});
