/** Gateway start/stop: the embedded broker, separate ops port, graceful stop of in-flight calls, main(). */
import { connectNats, serviceCallWildcard, serviceQueueGroup, silentLogger, parseFunctionService } from '../common';
import { StaticRuleSource } from '../common/manifest-source';
import { loadGatewayConfig, main, startGateway } from '../gateway';
import { freePort } from './helpers/ports';
import http from 'node:http';

const greeter = parseFunctionService(
  {
    apiVersion: 'fnmesh.io/v1alpha1',
    kind: 'FunctionService',
    metadata: { name: 'greeter' },
    spec: { functions: [{ name: 'hello', rule: { rule: 'allow' } }, { name: 'default' }] },
  },
  'test',
);

describe('gateway lifecycle', () => {
  it('runs the embedded broker, serves ops on their own port, and finishes in-flight calls on stop', async () => {
    const brokerPort = await freePort();
    const config = loadGatewayConfig({
      FNMESH_LISTEN: '127.0.0.1:0',
      FNMESH_OPS_LISTEN: '127.0.0.1:0',
      FNMESH_BROKER_PORT: String(brokerPort),
      FNMESH_NATS_TOKEN: 'tok',
      FNMESH_DEFAULT_RULE: '{"rule":"allow"}',
    });
    const source = new StaticRuleSource([greeter]);
    const gw = await startGateway(config, { logger: silentLogger, ruleSource: source });
    expect(gw.natsUrl).toBe(`nats://127.0.0.1:${brokerPort}`);
    expect(gw.opsUrl).not.toBe(gw.url);
    expect((await fetch(`${gw.opsUrl}/readyz`)).status).toBe(200);
    expect((await fetch(`${gw.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${gw.url}/metrics`)).status).toBe(404);

    const nc = await connectNats({ servers: [gw.natsUrl], token: 'tok', name: 'fn', logger: silentLogger });
    nc.subscribe(serviceCallWildcard('default', 'greeter'), {
      queue: serviceQueueGroup('default', 'greeter'),
      callback: (_e, msg) => void setTimeout(() => msg.respond(JSON.stringify({ fn: msg.subject })), 300),
    });
    await nc.flush();
    // an undeclared function is routed through the `default` entry with the gateway default rule (allow)
    const inFlight = fetch(`${gw.url}/v1/api/default/functions/greeter/other`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"params":1}',
    });
    await new Promise((r) => setTimeout(r, 100));
    const stopping = gw.stop();
    expect(gw.readiness().ready).toBe(false);
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ result: { fn: 'fnmesh.call.default.greeter.other' } });
    await stopping;
    await expect(fetch(`${gw.url}/healthz`)).rejects.toThrow();
    await nc.close();
  });

  it('on stop, a request sent on an idle keep-alive connection is answered (connection: close), not cut off', async () => {
    const brokerPort = await freePort();
    const config = loadGatewayConfig({
      FNMESH_LISTEN: '127.0.0.1:0',
      FNMESH_OPS_LISTEN: '127.0.0.1:0',
      FNMESH_BROKER_PORT: String(brokerPort),
      FNMESH_NATS_TOKEN: 'tok',
    });
    const gw = await startGateway(config, { logger: silentLogger, ruleSource: new StaticRuleSource([greeter]) });
    const nc = await connectNats({ servers: [gw.natsUrl], token: 'tok', name: 'fn', logger: silentLogger });
    nc.subscribe(serviceCallWildcard('default', 'greeter'), {
      queue: serviceQueueGroup('default', 'greeter'),
      callback: (_e, msg) => void msg.respond(JSON.stringify({ ok: true })),
    });
    await nc.flush();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    const call = (): Promise<{ status?: number; connection?: string }> =>
      new Promise((resolve, reject) => {
        const req = http.request(
          `${gw.url}/v1/api/default/functions/greeter/hello`,
          { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode, connection: res.headers.connection }));
          },
        );
        req.on('socket', (s) => sockets.add(s));
        req.on('error', reject);
        req.end('{"params":1}');
      });
    try {
      expect(await call()).toEqual({ status: 200, connection: 'keep-alive' });
      // the connection is idle in the agent's pool; the next call goes out on it as the gateway starts stopping
      const stopping = gw.stop();
      expect(await call()).toEqual({ status: 200, connection: 'close' });
      expect(sockets.size).toBe(1); // the same connection
      await stopping;
    } finally {
      agent.destroy();
      await nc.close();
    }
  });

  it('main() exits 2 with a clear message on a bad setting', async () => {
    const exit = jest.spyOn(process, 'exit').mockImplementation((code?: string | number | null) => {
      throw new Error(`exit ${code}`);
    });
    const stderr = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      await expect(main({ FNMESH_MAX_TIMEOUT_MS: 'soon' })).rejects.toThrow('exit 2');
      expect(stderr).toHaveBeenCalledWith(expect.stringContaining('FNMESH_MAX_TIMEOUT_MS="soon" is not valid'));
    } finally {
      exit.mockRestore();
      stderr.mockRestore();
      // the test runner's own exit status must not inherit anything from the code under test
      process.exitCode = undefined;
    }
  });
});
