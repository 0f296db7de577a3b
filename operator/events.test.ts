import type { CoreV1Event } from '@kubernetes/client-node';
import { EventRecorder, type InvolvedObject } from './events';

const obj = (uid: string, name = 'svc'): InvolvedObject => ({
  apiVersion: 'fnmesh.io/v1alpha1',
  kind: 'FunctionService',
  name,
  namespace: 'ns',
  uid,
});

/** A sink whose creates stay pending until released. */
function gatedSink() {
  const sent: CoreV1Event[] = [];
  const gates: Array<(err?: Error) => void> = [];
  return {
    sent,
    gates,
    sink: {
      create: (_ns: string, e: CoreV1Event) =>
        new Promise<void>((resolve, reject) => {
          sent.push(e);
          gates.push((err) => (err ? reject(err) : resolve()));
        }),
    },
  };
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('EventRecorder', () => {
  test('records an event once per object, type, reason and message; forget() lets it be recorded again', async () => {
    const s = gatedSink();
    const r = new EventRecorder({ sink: s.sink, instance: 'i' });
    void r.record(obj('a'), 'Normal', 'Created', 'made');
    void r.record(obj('a'), 'Normal', 'Created', 'made');
    void r.record(obj('b'), 'Normal', 'Created', 'made');
    expect(s.sent.map((e) => e.involvedObject.uid)).toEqual(['a', 'b']);
    expect(s.sent[0]).toEqual(
      expect.objectContaining({
        type: 'Normal',
        reason: 'Created',
        message: 'made',
        reportingInstance: 'i',
        metadata: { generateName: 'svc.', namespace: 'ns' },
      }),
    );
    r.forget('a');
    void r.record(obj('a'), 'Normal', 'Created', 'made');
    expect(s.sent).toHaveLength(3);
    expect(r.remembered()).toBe(2);
  });

  test('never waits for the API: at most maxInFlight are sent at once, the rest wait their turn', async () => {
    const s = gatedSink();
    const r = new EventRecorder({ sink: s.sink, instance: 'i', maxInFlight: 2 });
    const done = [0, 1, 2, 3].map((i) => r.record(obj(`u${i}`), 'Normal', 'Created', 'made'));
    expect(s.sent).toHaveLength(2);
    expect(r.pending()).toBe(4);
    s.gates[0]!();
    await done[0];
    await flush();
    expect(s.sent).toHaveLength(3);
    for (const g of s.gates.slice(1)) g();
    await flush();
    s.gates[3]?.();
    await Promise.all(done);
    expect(r.recorded).toBe(4);
    expect(r.pending()).toBe(0);
  });

  test('past maxBacklog the oldest waiting event is dropped (and may be recorded again later)', async () => {
    const s = gatedSink();
    const r = new EventRecorder({ sink: s.sink, instance: 'i', maxInFlight: 1, maxBacklog: 2 });
    const first = r.record(obj('a'), 'Normal', 'Created', 'm');
    const dropped = r.record(obj('b'), 'Normal', 'Created', 'm');
    void r.record(obj('c'), 'Normal', 'Created', 'm');
    void r.record(obj('d'), 'Normal', 'Created', 'm');
    await dropped;
    expect(r.dropped).toBe(1);
    void r.record(obj('b'), 'Normal', 'Created', 'm');
    expect(r.pending()).toBe(3);
    s.gates[0]!();
    await first;
  });

  test('a failed send is forgotten, so a later reconcile records it again', async () => {
    const s = gatedSink();
    const r = new EventRecorder({ sink: s.sink, instance: 'i' });
    const p = r.record(obj('a'), 'Warning', 'X', 'm');
    s.gates[0]!(new Error('boom'));
    await p;
    expect(r.recorded).toBe(0);
    void r.record(obj('a'), 'Warning', 'X', 'm');
    expect(s.sent).toHaveLength(2);
  });
});
