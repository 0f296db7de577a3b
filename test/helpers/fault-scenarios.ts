/**
 * Issue 10's fault scenarios, written once for every mesh they run on (test/fault-local.test.ts on
 * `fnmesh local`, test/fault-cluster.test.ts on `fnmesh cluster`'s real pods): each drives the fault fixture
 * (test/fixtures/faulty-function.ts) through its control folder or a SIGKILL under steady load
 * (test/helpers/fault-load.ts) and asserts what the callers saw against what the function ran (its execution
 * log). A `FaultMesh` says how a mesh shows its replicas: where their function processes are, how a sidecar
 * reports its function out and back, how a killed function comes back.
 *
 * Two services of two replicas each, whose function `work` is the fixture: `flaky` (at-most-once, the default)
 * and `flaky-idem` (`idempotent: true`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { expect } from '@jest/globals';
import { DEFAULT_CIRCUIT_BREAKER, DEFAULT_RETRY } from '../../common/resilience';
import {
  byRequestId,
  classifyFailures,
  readExecutions,
  setMode,
  unanswered,
  type Execution,
} from '../fixtures/execution-log';
import { callWithId, killWhileRunning, nextRequestId, steadyLoad, type CallRecord } from './fault-load';
import { waitFor } from './wait';

export const FLAKY = 'flaky';
export const IDEM = 'flaky-idem';
export const FAULT_SERVICES = [FLAKY, IDEM] as const;
export const faultRoute = (service: string): string => `default/functions/${service}/work`;

/** One replica: its id (as the gateway's listing and micro PING name it) and its function's process. */
export interface FaultReplica {
  id: string;
  fnPid: number;
}

/** What the scenarios need of a mesh. */
export interface FaultMesh {
  /** The gateway's HTTP port (calls) and its ops listener (GET /v1/services). */
  gateway: string;
  gatewayOps: string;
  /** The fixture's folders of `service` (FAULTY_LOG_DIR, FAULTY_CONTROL_DIR). */
  logDir(service: string): string;
  controlDir(service: string): string;
  /** The two replicas of `service`, both serving, in a stable order. */
  replicas(service: string): Promise<[FaultReplica, FaultReplica]>;
  /** A marker taken before a fault, for `successor`. */
  mark(): number;
  /** Waits for `r`'s sidecar to report its function out of service (hung or down). */
  sidecarOut(r: FaultReplica): Promise<void>;
  /** Waits for `r`'s sidecar to report its function back. */
  sidecarIn(r: FaultReplica): Promise<void>;
  /** After `r`'s function died (at or after `mark`): waits for the restarted function, its sidecar ready. */
  successor(r: FaultReplica, mark: number): Promise<FaultReplica>;
  /** `r`'s sidecar's /metrics, where the test can reach its ops port (undefined: it cannot). */
  sidecarMetrics?(r: FaultReplica): Promise<string>;
}

/** What a test shows when a list it expects empty is not: enough to tell the failure apart. */
export const seen = (c: CallRecord): string => `${c.requestId} ${c.status} attempts=${c.attempts} ${c.error ?? ''}`;

const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(safeStatus(pid));
function safeStatus(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return '';
  }
}

/** The replicas' states in the gateway's listing (GET /v1/services on its ops listener), by replica id. */
export async function listedReplicas(gatewayOps: string, service: string): Promise<Record<string, string>> {
  const body = (await (await fetch(`${gatewayOps}/v1/services`)).json()) as {
    services: { name: string; replicas: { id: string; state: string }[] }[];
  };
  const listed = body.services.find((s) => s.name === service);
  return Object.fromEntries((listed?.replicas ?? []).map((r) => [r.id, r.state]));
}

/** Waits for the gateway's listing to show replica `id` of `service` serving again. */
export async function waitListedServing(gatewayOps: string, service: string, id: string): Promise<void> {
  await waitFor(async () => (await listedReplicas(gatewayOps, service))[id] === 'serving', {
    timeoutMs: 20_000,
    what: `the gateway's listing to show ${id} serving`,
  });
}

/** Waits for the gateway's listing to show replica `id` of `service` listed and not serving. */
export async function waitListedOut(gatewayOps: string, service: string, id: string): Promise<void> {
  await waitFor(
    async () => {
      const state = (await listedReplicas(gatewayOps, service))[id];
      return state !== undefined && state !== 'serving';
    },
    { timeoutMs: 20_000, what: `the gateway's listing to show ${id} out of rotation` },
  );
}

export async function warmUp(mesh: FaultMesh, timeoutMs: number): Promise<void> {
  for (const service of FAULT_SERVICES)
    await waitFor(
      async () => (await callWithId(mesh.gateway, faultRoute(service), {}, nextRequestId('warm'))).status === 200,
      { timeoutMs, intervalMs: 100, what: `${service} to answer through the gateway` },
    );
}

/**
 * SIGKILL of replica 0's function of both services under steady load: no failed call among those it had not
 * started; those it was running answered 502 (flaky, which never ran a call twice) or retried elsewhere
 * (flaky-idem).
 */
export async function sigkillUnderLoad(mesh: FaultMesh): Promise<void> {
  const loads: Record<string, ReturnType<typeof steadyLoad>> = {};
  for (const s of FAULT_SERVICES)
    loads[s] = steadyLoad({
      gatewayUrl: mesh.gateway,
      route: faultRoute(s),
      workers: 8,
      timeoutMs: 8_000,
      params: { delayMs: 40 },
      idPrefix: `kill-${s}`,
    });
  const victims: Record<string, FaultReplica> = {};
  const others: Record<string, FaultReplica> = {};
  const cut: Record<string, Execution[]> = {};
  const successors: Record<string, FaultReplica> = {};
  const killedAt: Record<string, number> = {};
  try {
    for (const s of FAULT_SERVICES) [victims[s], others[s]] = await mesh.replicas(s);
    await waitFor(
      () =>
        FAULT_SERVICES.every(
          (s) => loads[s]!.answeredBy(victims[s]!.fnPid) >= 30 && loads[s]!.answeredBy(others[s]!.fnPid) >= 30,
        ),
      { timeoutMs: 30_000, what: 'both replicas of both services answering the load' },
    );
    // kill while each victim runs calls, so that some are cut mid-run
    const mark = mesh.mark();
    for (const s of FAULT_SERVICES) killedAt[s] = await killWhileRunning(mesh.logDir(s), victims[s]!.fnPid);
    for (const s of FAULT_SERVICES) {
      await waitFor(() => !alive(victims[s]!.fnPid), { what: `${victims[s]!.id}'s function to be gone` });
      cut[s] = unanswered(readExecutions(mesh.logDir(s)), victims[s]!.fnPid);
      successors[s] = await mesh.successor(victims[s]!, mark);
    }
    // the restarted functions take calls again, and the load ran on through all of it
    await waitFor(() => FAULT_SERVICES.every((s) => loads[s]!.answeredBy(successors[s]!.fnPid) >= 30), {
      timeoutMs: 30_000,
      what: 'the restarted functions to answer calls',
    });
  } finally {
    await Promise.all(FAULT_SERVICES.map((s) => loads[s]!.stop()));
  }

  // flaky (at-most-once): nothing lost that had not started, nothing run twice, the cut calls told 502
  const flaky = byRequestId(readExecutions(mesh.logDir(FLAKY)));
  const flakyCalls = new Map(loads[FLAKY]!.results.map((c) => [c.requestId, c]));
  expect([...flaky].filter(([, list]) => list.length > 1).map(([id]) => id)).toEqual([]);
  const flakyFailed = classifyFailures(loads[FLAKY]!.results, flaky, [killedAt[FLAKY]!]);
  expect(flakyFailed.notExecuted.map(seen)).toEqual([]);
  expect(cut[FLAKY]!.length).toBeGreaterThan(0);
  expect(cut[FLAKY]!.map((e) => `${e.requestId} ${flakyCalls.get(e.requestId)?.status}`)).toEqual(
    cut[FLAKY]!.map((e) => `${e.requestId} 502`),
  );
  // the only calls that failed were those the killed function was running, or had been handed and not read
  // yet when it died (no one can tell those from a call it read): each told 502, it may have run. A call it
  // had answered just before the kill counts too: its answer was written, the kill reset the connection
  // before the sidecar read it (a loaded machine widens that moment), and the caller is told 502 all the same.
  const cutIds = new Set(cut[FLAKY]!.map((e) => e.requestId));
  const lostAnswer = (id: string): boolean =>
    (flaky.get(id) ?? []).some((e) => e.pid === victims[FLAKY]!.fnPid && e.status !== undefined);
  expect(
    flakyFailed.ambiguous
      .filter((c) => !cutIds.has(c.requestId) && !(c.status === 502 && lostAnswer(c.requestId)))
      .map(seen),
  ).toEqual([]);
  expect([...cutIds].filter((id) => !flakyFailed.ambiguous.some((c) => c.requestId === id))).toEqual([]);
  expect(flakyFailed.unreadAtKill.filter((c) => c.status !== 502).map(seen)).toEqual([]);
  // only around the moment of death: a handful, not a second's worth of calls (8 callers)
  expect(flakyFailed.unreadAtKill.length).toBeLessThanOrEqual(8);

  // flaky-idem (idempotent): not one failed call; the cut ones ran again on another replica
  const idem = byRequestId(readExecutions(mesh.logDir(IDEM)));
  const idemCalls = new Map(loads[IDEM]!.results.map((c) => [c.requestId, c]));
  expect(loads[IDEM]!.results.filter((c) => c.status !== 200).map(seen)).toEqual([]);
  expect(cut[IDEM]!.length).toBeGreaterThan(0);
  for (const e of cut[IDEM]!) {
    expect(idemCalls.get(e.requestId)).toMatchObject({ status: 200, attempts: expect.any(Number) });
    expect(idemCalls.get(e.requestId)!.attempts).toBeGreaterThanOrEqual(2);
    expect(idem.get(e.requestId)!.some((x) => x.pid !== victims[IDEM]!.fnPid && x.status === 200)).toBe(true);
  }
  // a call retried because it was not executed was answered by a replica that ran it once
  for (const c of loads[IDEM]!.results)
    expect((idem.get(c.requestId) ?? []).filter((x) => x.status === 200)).toHaveLength(1);
}

/**
 * Replica 1 of flaky hangs (accepts connections, answers nothing, not even its health check): its sidecar takes
 * it out, replica 0 carries the load, and it rejoins when it answers again. The calls that failed were those
 * the hung function had started (they ran out of time there).
 */
export async function hungFunction(mesh: FaultMesh): Promise<void> {
  const [other, hung] = await mesh.replicas(FLAKY);
  const control = mesh.controlDir(FLAKY);
  const executions = (): Execution[] => readExecutions(mesh.logDir(FLAKY));
  const load = steadyLoad({
    gatewayUrl: mesh.gateway,
    route: faultRoute(FLAKY),
    workers: 6,
    timeoutMs: 3_000,
    params: { delayMs: 10 },
    idPrefix: 'hang',
  });
  let startsWhenOut = 0;
  let answeredBeforeRejoin = 0;
  try {
    await waitFor(() => load.answeredBy(hung.fnPid) >= 20 && load.answeredBy(other.fnPid) >= 20, {
      timeoutMs: 20_000,
      what: 'both replicas answering',
    });
    setMode(control, { pid: hung.fnPid }, 'hang');
    // its sidecar sees the health check go unanswered: not ready, out of the queue group
    await mesh.sidecarOut(hung);
    if (mesh.sidecarMetrics)
      expect(await mesh.sidecarMetrics(hung)).toMatch(/^fnmesh_sidecar_taking_calls(\{[^}]*\})? 0$/m);
    const mark = load.results.length;
    await waitFor(() => load.results.slice(mark).filter((r) => r.status === 200).length >= 20, {
      timeoutMs: 20_000,
      what: 'calls answered after the hung replica was taken out',
    });
    startsWhenOut = executions().filter((e) => e.pid === hung.fnPid).length;
    const mark2 = load.results.length;
    const mark2At = performance.now();
    await waitFor(() => load.results.slice(mark2).filter((r) => r.status === 200).length >= 100, {
      timeoutMs: 30_000,
      what: '100 more calls answered',
    });
    // not one more call was sent to the hung function, and every call sent after it was taken out succeeded
    // (by when they were sent: a call the hung function took before runs out of time later, as it should)
    expect(executions().filter((e) => e.pid === hung.fnPid).length).toBe(startsWhenOut);
    expect(
      load.results
        .slice(mark2)
        .filter((r) => r.sentAt >= mark2At && (r.status !== 200 || r.pid !== other.fnPid))
        .map(seen),
    ).toEqual([]);
    answeredBeforeRejoin = load.answeredBy(hung.fnPid);
    setMode(control, { pid: hung.fnPid }, 'ok');
    await mesh.sidecarIn(hung);
    await waitFor(() => load.answeredBy(hung.fnPid) >= answeredBeforeRejoin + 20, {
      timeoutMs: 30_000,
      what: 'the recovered replica to take calls again',
    });
  } finally {
    setMode(control, { pid: hung.fnPid }, 'ok');
    await load.stop();
  }
  const ex = byRequestId(executions());
  const failed = classifyFailures(load.results, ex);
  expect(failed.notExecuted.map(seen)).toEqual([]);
  for (const c of failed.ambiguous) {
    expect(`${c.requestId} ${c.status}`).toBe(`${c.requestId} 504`);
    expect(ex.get(c.requestId)!.map((e) => `${e.pid} ${e.status}`)).toEqual([`${hung.fnPid} undefined`]);
  }
}

/**
 * Replica 0 of flaky-idem goes down (stops listening: connections refused) and comes back: its sidecar leaves
 * the queue group (no call is sent to it and retried elsewhere), the gateway's listing shows it out and why,
 * and it rejoins. `target` is whom the fixture's mode applies to (the port, across restarts, where every
 * replica has its own; else the process).
 */
export async function downAndBack(
  mesh: FaultMesh,
  target: (r: FaultReplica) => { pid: number } | { port: number },
): Promise<void> {
  const [down, other] = await mesh.replicas(IDEM);
  const control = mesh.controlDir(IDEM);
  const load = steadyLoad({
    gatewayUrl: mesh.gateway,
    route: faultRoute(IDEM),
    workers: 6,
    timeoutMs: 5_000,
    params: { delayMs: 5 },
    idPrefix: 'downup',
  });
  const mode = target(down);
  let whileDown: CallRecord[] = [];
  try {
    await waitFor(() => load.answeredBy(down.fnPid) >= 20 && load.answeredBy(other.fnPid) >= 20, {
      timeoutMs: 20_000,
      what: 'both replicas answering',
    });
    setMode(control, mode, 'refuse');
    await mesh.sidecarOut(down);
    // the gateway's listing shows the replica out, and why, beside the one that serves
    await waitFor(
      async () => {
        const states = await listedReplicas(mesh.gatewayOps, IDEM);
        return states[down.id] !== undefined && states[down.id] !== 'serving' && states[other.id] === 'serving';
      },
      { timeoutMs: 20_000, what: `the gateway's listing to show ${down.id} out of rotation` },
    );
    expect(['function-down', 'unhealthy']).toContain((await listedReplicas(mesh.gatewayOps, IDEM))[down.id]);
    if (mesh.sidecarMetrics) {
      const metrics = await mesh.sidecarMetrics(down);
      expect(metrics).toMatch(/^fnmesh_sidecar_function_healthy(\{[^}]*\})? 0$/m);
      expect(metrics).toMatch(/^fnmesh_sidecar_taking_calls(\{[^}]*\})? 0$/m);
      expect(metrics).toMatch(
        /^fnmesh_sidecar_queue_group_leaves_total\{[^}]*reason="(?:function-down|unhealthy)"[^}]*\} [1-9]/m,
      );
    }
    // a few calls for the sidecar's leaving to reach the broker, then the calls that count
    const noticedAt = performance.now();
    await waitFor(() => load.results.filter((r) => r.sentAt > noticedAt).length >= 20, {
      timeoutMs: 20_000,
      what: 'calls after the sidecar noticed',
    });
    const outAt = performance.now();
    await waitFor(() => load.results.filter((r) => r.sentAt > outAt).length >= 150, {
      timeoutMs: 30_000,
      what: '150 calls while the function is down',
    });
    whileDown = load.results.filter((r) => r.sentAt > outAt);
    setMode(control, mode, 'ok');
    await mesh.sidecarIn(down);
    const back = load.answeredBy(down.fnPid);
    await waitFor(() => load.answeredBy(down.fnPid) >= back + 20, {
      timeoutMs: 30_000,
      what: 'the replica back in the queue group, taking calls',
    });
    await waitListedServing(mesh.gatewayOps, IDEM, down.id);
    if (mesh.sidecarMetrics) {
      const metricsBack = await mesh.sidecarMetrics(down);
      expect(metricsBack).toMatch(/^fnmesh_sidecar_function_healthy(\{[^}]*\})? 1$/m);
      expect(metricsBack).toMatch(/^fnmesh_sidecar_taking_calls(\{[^}]*\})? 1$/m);
    }
  } finally {
    setMode(control, mode, 'ok');
    await load.stop();
  }
  // while it was down, every call went straight to the other replica: had the down sidecar stayed in the
  // queue group, about half of them would have reached it and come back "not executed" for a second attempt
  expect(whileDown.filter((r) => r.status !== 200 || r.pid !== other.fnPid || r.attempts !== 1).map(seen)).toEqual([]);
  expect(load.results.filter((r) => r.status !== 200).map(seen)).toEqual([]);
}

/**
 * Every replica of flaky down (killed; their restarts refuse connections): 503 at once, well before the
 * deadline, nothing run; then recovery when they come back.
 */
export async function everyReplicaDown(mesh: FaultMesh): Promise<void> {
  const replicas = await mesh.replicas(FLAKY);
  const control = mesh.controlDir(FLAKY);
  const mark = mesh.mark();
  setMode(control, 'all', 'refuse'); // their restarts wait, not listening
  try {
    for (const r of replicas) process.kill(r.fnPid, 'SIGKILL');
    for (const r of replicas) await mesh.sidecarOut(r);
    const timeout = 8_000;
    const calls: CallRecord[] = [];
    for (let i = 0; i < 3 * DEFAULT_CIRCUIT_BREAKER.consecutiveFailures; i++)
      calls.push(await callWithId(mesh.gateway, faultRoute(FLAKY), { timeout }, nextRequestId('alldown')));
    expect(calls.filter((c) => c.status !== 503).map(seen)).toEqual([]);
    for (const c of calls) expect(c.answeredAt - c.sentAt).toBeLessThan(timeout / 4);
    // the function's circuit opened: the gateway says when to come back
    expect(calls.filter((c) => c.retryAfter !== undefined).length).toBeGreaterThan(0);
    const ex = byRequestId(readExecutions(mesh.logDir(FLAKY)));
    expect(calls.filter((c) => ex.has(c.requestId)).map(seen)).toEqual([]);
  } finally {
    setMode(control, 'all', 'ok');
  }
  for (const r of replicas) await mesh.successor(r, mark);
  const first = await waitFor(
    async () => {
      const c = await callWithId(mesh.gateway, faultRoute(FLAKY), { timeout: 2_000 }, nextRequestId('recover'));
      return c.status === 200 ? c : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 50, what: 'a call answered after the functions came back' },
  );
  expect(first.status).toBe(200);
  const after: CallRecord[] = [];
  for (let i = 0; i < 20; i++)
    after.push(await callWithId(mesh.gateway, faultRoute(FLAKY), { timeout: 5_000 }, nextRequestId('recovered')));
  expect(after.filter((c) => c.status !== 200).map(seen)).toEqual([]);
}

/**
 * Retries stay within the one deadline: every attempt the function saw carries the same deadline and began
 * before it, the gateway's fnmesh-attempts is the number of attempts the function saw, and the at-most-once
 * function is not retried.
 */
export async function retriesWithinDeadline(mesh: FaultMesh): Promise<void> {
  const idemControl = mesh.controlDir(IDEM);
  const flakyControl = mesh.controlDir(FLAKY);
  const byId = (service: string): Map<string, Execution[]> => byRequestId(readExecutions(mesh.logDir(service)));
  setMode(idemControl, 'all', 'fail');
  setMode(flakyControl, 'all', 'fail');
  try {
    // idempotent: a 500 is retried, as long as the deadline leaves time (each attempt takes 150 ms)
    const id = nextRequestId('deadline-idem');
    const r = await callWithId(mesh.gateway, faultRoute(IDEM), { params: { delayMs: 150 }, timeout: 400 }, id);
    const attempts = byId(IDEM).get(id) ?? [];
    expect([502, 504]).toContain(r.status);
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(attempts.length).toBeLessThanOrEqual(DEFAULT_RETRY.attempts);
    expect(r.attempts).toBe(attempts.length);
    expect(attempts.map((e) => e.attempt).sort()).toEqual(attempts.map((_, i) => i + 1));
    // one deadline: each sidecar turns the remaining budget into x-fnmesh-deadline (whole epoch ms, so the
    // attempts' values differ by rounding and transit), where a fresh budget would add ≥ 150 ms per attempt
    const deadlines = attempts.map((e) => e.deadline);
    expect(Math.max(...deadlines) - Math.min(...deadlines)).toBeLessThan(25);
    for (const e of attempts) expect(e.startedAt).toBeLessThanOrEqual(e.deadline);

    // at-most-once: the same failure is not retried
    const id2 = nextRequestId('deadline-flaky');
    const r2 = await callWithId(mesh.gateway, faultRoute(FLAKY), { params: { delayMs: 150 }, timeout: 400 }, id2);
    expect(r2.status).toBe(502);
    expect(r2.attempts).toBe(1);
    expect(byId(FLAKY).get(id2)).toHaveLength(1);
  } finally {
    setMode(idemControl, 'all', 'ok');
    setMode(flakyControl, 'all', 'ok');
  }
}

/** Over every call the suite made, the at-most-once function never ran one call twice. */
export function neverRanTwice(mesh: FaultMesh): void {
  const ex = byRequestId(readExecutions(mesh.logDir(FLAKY)));
  const twice = [...ex].filter(([, list]) => list.length > 1);
  expect(twice.map(([id, list]) => `${id}: ${list.map((e) => e.pid).join(',')}`)).toEqual([]);
  expect(ex.size).toBeGreaterThan(200);
}
