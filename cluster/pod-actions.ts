/**
 * Probes and lifecycle hooks against a pod's processes, the way the kubelet runs them: an HTTP GET (success
 * is a status from 200 to 399), a TCP connect, or a command run inside the pod (success is exit 0). They
 * reach the pod through its sandbox's ingress socket (cluster/pod-sandbox.ts).
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import type { Action } from './pod-plan';

export interface PodHandle {
  /** The sandbox's ingress Unix socket. */
  ingressPath: string;
  /** The sandbox process (its network namespace is the pod's). */
  sandboxPid: number;
  /** The container's process: an exec runs in its mount namespace (its volumeMounts), as on a kubelet. */
  containerPid?: number;
  env: Record<string, string>;
  cwd: string;
}

export interface ActionResult {
  ok: boolean;
  detail: string;
}

function httpGet(pod: PodHandle, port: number, path: string, timeoutMs: number): Promise<ActionResult> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        method: 'GET',
        path,
        headers: { host: `127.0.0.1:${port}`, 'user-agent': 'kube-probe/1.35', connection: 'close' },
        createConnection: () => {
          const s = net.connect(pod.ingressPath);
          s.write(`${port}\n`);
          return s;
        },
        timeout: timeoutMs,
      },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        res.on('end', () =>
          resolve({ ok: status >= 200 && status < 400, detail: `HTTP probe failed with statuscode: ${status}` }),
        );
        res.on('error', (err) => resolve({ ok: false, detail: err.message }));
      },
    );
    req.on('timeout', () =>
      req.destroy(
        new Error(`Get "http://127.0.0.1:${port}${path}": context deadline exceeded (timeout ${timeoutMs} ms)`),
      ),
    );
    req.on('error', (err) => resolve({ ok: false, detail: `Get "http://127.0.0.1:${port}${path}": ${err.message}` }));
    req.end();
  });
}

function tcpCheck(pod: PodHandle, port: number, timeoutMs: number): Promise<ActionResult> {
  return new Promise((resolve) => {
    const s = net.connect(pod.ingressPath);
    let answer = '';
    const timer = setTimeout(() => s.destroy(new Error('timeout')), timeoutMs);
    s.write(`?${port}\n`);
    s.on('data', (d: Buffer) => (answer += d.toString()));
    s.on('close', () => {
      clearTimeout(timer);
      const ok = answer.startsWith('ok');
      resolve({
        ok,
        detail: ok ? '' : `dial tcp 127.0.0.1:${port}: ${answer.slice(3).trim() || 'connection refused'}`,
      });
    });
    s.on('error', () => undefined);
  });
}

function execInPod(pod: PodHandle, argv: string[], timeoutMs: number): Promise<ActionResult> {
  return new Promise((resolve) => {
    const mountNs = pod.containerPid ? [`--mount=/proc/${pod.containerPid}/ns/mnt`, `--wd=${pod.cwd}`] : [];
    const child = spawn(
      'nsenter',
      [`--net=/proc/${pod.sandboxPid}/ns/net`, `--uts=/proc/${pod.sandboxPid}/ns/uts`, ...mountNs, '--', ...argv],
      {
        cwd: pod.cwd,
        env: pod.env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-1024)));
    child.stderr.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-1024)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, detail: err.message });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        ok: code === 0,
        detail: signal
          ? `command timed out after ${timeoutMs} ms`
          : `command exited with ${String(code)}: ${out.trim()}`,
      });
    });
  });
}

export function runAction(pod: PodHandle, action: Action, timeoutMs: number): Promise<ActionResult> {
  switch (action.kind) {
    case 'http':
      return httpGet(pod, action.port, action.path, timeoutMs);
    case 'tcp':
      return tcpCheck(pod, action.port, timeoutMs);
    case 'exec':
      return execInPod(pod, action.argv, timeoutMs);
  }
}
