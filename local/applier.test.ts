import { parseFunctionService } from '../common/manifest';
import { PlanApplier, type AppliedReplica, type ReplicaOps } from './applier';
import { desiredState, replicaId, type DesiredState, type ServicePlan } from './plan';

function desired(services: Record<string, { replicas: number; command?: string[] }>): DesiredState {
  return desiredState(
    Object.entries(services).map(([name, s]) => ({
      service: parseFunctionService(
        {
          apiVersion: 'fnmesh.io/v1alpha1',
          kind: 'FunctionService',
          metadata: { name, namespace: 'default' },
          spec: { replicas: s.replicas, local: { command: s.command ?? ['node', 'index.js'] } },
        },
        `${name}.yaml`,
      ),
      file: `/m/${name}.yaml`,
    })),
    '/m',
  );
}

/** Replicas that are records: every start, stop and readiness wait is logged in order. */
class RecordedReplicas implements ReplicaOps<AppliedReplica> {
  readonly log: string[] = [];
  /** Starts wait on this while set (to hold a pass open). */
  gate: Promise<void> | undefined;
  ready = true;
  /** Starts of these replica ids fail. */
  readonly failing = new Set<string>();
  /** Stops of these replica ids wait on `gate` too. */
  readonly slowStops = new Set<string>();

  async start(plan: ServicePlan, index: number): Promise<AppliedReplica> {
    if (this.failing.has(replicaId(plan, index))) throw new Error(`cannot start ${replicaId(plan, index)}`);
    await this.gate;
    const id = replicaId(plan, index);
    this.log.push(`start ${id} ${plan.command.join(' ')}`);
    return { key: plan.key, index, id, plan };
  }
  async stop(r: AppliedReplica): Promise<void> {
    if (this.slowStops.has(r.id)) await this.gate;
    this.log.push(`stop ${r.id}`);
  }
  async waitReady(r: AppliedReplica): Promise<boolean> {
    this.log.push(`ready? ${r.id}`);
    return this.ready;
  }
}

function setup(): { replicas: RecordedReplicas; said: string[]; applier: PlanApplier<AppliedReplica> } {
  const replicas = new RecordedReplicas();
  const said: string[] = [];
  return { replicas, said, applier: new PlanApplier({ replicas, say: (m) => said.push(m), restartReadyTimeoutMs: 1 }) };
}

describe('PlanApplier', () => {
  it('starts the replicas a plan asks for and keeps them by service', async () => {
    const { replicas, applier } = setup();
    await applier.apply(desired({ greeter: { replicas: 2 }, text: { replicas: 1 } }));
    expect(replicas.log).toEqual([
      'start greeter-0 node index.js',
      'start greeter-1 node index.js',
      'start text-0 node index.js',
    ]);
    expect(applier.replicasOf('default/greeter').map((r) => r.id)).toEqual(['greeter-0', 'greeter-1']);
    expect(applier.all()).toHaveLength(3);
    expect(applier.idle).toBe(true);
  });

  it('scales down from the highest index and says why a replica stops', async () => {
    const { replicas, said, applier } = setup();
    await applier.apply(desired({ greeter: { replicas: 3 }, text: { replicas: 1 } }));
    replicas.log.length = 0;
    await applier.apply(desired({ greeter: { replicas: 1 } }));
    expect(replicas.log).toEqual(['stop greeter-2', 'stop greeter-1', 'stop text-0']);
    expect(said).toEqual([
      'default/greeter: stopping replica greeter-2 (scale down)',
      'default/greeter: stopping replica greeter-1 (scale down)',
      'default/text: stopping replica text-0 (manifest removed)',
    ]);
    expect(applier.replicasOf('default/text')).toEqual([]);
  });

  it('restarts a changed service one replica at a time, waiting for each to be ready', async () => {
    const { replicas, said, applier } = setup();
    await applier.apply(desired({ greeter: { replicas: 2 } }));
    replicas.log.length = 0;
    replicas.ready = false;
    await applier.apply(desired({ greeter: { replicas: 2, command: ['node', 'v2.js'] } }));
    expect(replicas.log).toEqual([
      'stop greeter-0',
      'start greeter-0 node v2.js',
      'ready? greeter-0',
      'stop greeter-1',
      'start greeter-1 node v2.js',
      'ready? greeter-1',
    ]);
    expect(said).toContain('warning: greeter-0 is not ready after 0 s; continuing the restart');
    expect(applier.replicasOf('default/greeter').map((r) => r.plan.command)).toEqual([
      ['node', 'v2.js'],
      ['node', 'v2.js'],
    ]);
  });

  it('runs one pass at a time; plans given meanwhile collapse into one pass on the newest', async () => {
    const { replicas, applier } = setup();
    let open!: () => void;
    replicas.gate = new Promise((resolve) => (open = resolve));
    const first = applier.apply(desired({ greeter: { replicas: 1 } }));
    expect(applier.idle).toBe(false);
    void applier.apply(desired({ greeter: { replicas: 3 } }));
    const last = applier.apply(desired({ greeter: { replicas: 2 } }));
    replicas.gate = undefined;
    open();
    await Promise.all([first, last]);
    expect(replicas.log).toEqual(['start greeter-0 node index.js', 'start greeter-1 node index.js']);
    expect(applier.idle).toBe(true);
  });

  it('warns once about a skipped service until its reason changes or it goes', async () => {
    const { said, applier } = setup();
    const remote = (): DesiredState => ({
      services: new Map(),
      skipped: [{ key: 'default/remote', reason: 'no local' }],
    });
    await applier.apply(remote());
    await applier.apply(remote());
    await applier.apply({ services: new Map(), skipped: [] });
    await applier.apply(remote());
    expect(said).toEqual(['warning: default/remote: no local', 'warning: default/remote: no local']);
  });

  it('reports a failed pass and applies the next plan', async () => {
    const { replicas, said, applier } = setup();
    replicas.gate = Promise.reject(new Error('no ports left'));
    replicas.gate.catch(() => undefined);
    await applier.apply(desired({ greeter: { replicas: 1 } }));
    expect(said).toEqual(['error: applying the manifests failed: no ports left']);
    replicas.gate = undefined;
    await applier.apply(desired({ greeter: { replicas: 1 } }));
    expect(applier.replicasOf('default/greeter')).toHaveLength(1);
  });

  it('stopAll waits for the pass under way, then stops every replica, and applies nothing after', async () => {
    const { replicas, applier } = setup();
    let open!: () => void;
    replicas.gate = new Promise((resolve) => (open = resolve));
    void applier.apply(desired({ greeter: { replicas: 2 } }));
    const stopped = applier.stopAll();
    replicas.gate = undefined;
    open();
    await stopped;
    expect(replicas.log).toEqual([
      'start greeter-0 node index.js',
      'start greeter-1 node index.js',
      'stop greeter-0',
      'stop greeter-1',
    ]);
    await applier.apply(desired({ greeter: { replicas: 1 } }));
    expect(replicas.log).toHaveLength(4);
    expect(applier.all()).toEqual([]);
  });

  it('a restart that fails ends its pass only after the other services’ restarts, so stopAll stops every replica', async () => {
    const { replicas, said, applier } = setup();
    await applier.apply(desired({ a: { replicas: 1 }, b: { replicas: 1 } }));
    replicas.log.length = 0;
    let open!: () => void;
    replicas.gate = new Promise<void>((r) => (open = r));
    replicas.slowStops.add('b-0');
    replicas.failing.add('a-0');
    // Both services change: a's restart fails at once (a-0 does not start), b's waits on its old replica's stop.
    const pass = applier.apply(
      desired({ a: { replicas: 1, command: ['node', 'v2.js'] }, b: { replicas: 1, command: ['node', 'v2.js'] } }),
    );
    for (let i = 0; i < 100 && !said.some((m) => m.includes('cannot start a-0')); i++)
      await new Promise((r) => setImmediate(r));
    // The mesh stops while b's restart is still under way.
    const stopped = applier.stopAll();
    open();
    await pass;
    await stopped;
    // Let whatever b's restart still had to do run (it must have nothing left).
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(replicas.log).toContain('stop b-0');
    expect(said.some((m) => m.includes('cannot start a-0'))).toBe(true);
    // b-0's new process was never started once the mesh was stopping, and nothing is left running.
    expect(replicas.log.filter((l) => l.startsWith('start b-0'))).toEqual([]);
    expect(applier.all()).toEqual([]);
  });
});
