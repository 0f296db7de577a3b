/**
 * The volumes of one pod on this machine: fetches what they read (Secrets, ConfigMaps, service-account tokens
 * through the TokenRequest API, persistentVolumeClaims and their PersistentVolumes), writes each file volume with the kubelet's atomic `..data` swap into the
 * pod's folder, makes its emptyDirs, and says where each container binds what (cluster/volume-plan.ts decides;
 * this carries it out). `sync` runs at start and then periodically, so a changed Secret or ConfigMap reaches
 * the files (as the kubelet does, within its sync period) and a token is renewed before it expires. A claim,
 * once mounted, stays as it was resolved (as on a kubelet: the pod keeps its volume while it runs).
 */
import { chmodSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { writeVolumeFiles } from './atomic-writer';
import { planVolumes, tokenDue, volumeNeeds, type ClaimObjects, type HostMount, type VolumePlan } from './volume-plan';

/** What the volumes read, from the API server. A Secret or ConfigMap that does not exist is undefined. */
export interface VolumeSource {
  secret(namespace: string, name: string): Promise<Record<string, Buffer> | undefined>;
  configMap(namespace: string, name: string): Promise<Record<string, Buffer> | undefined>;
  /** A token for the ServiceAccount, bound to the pod (TokenRequest). */
  token(
    namespace: string,
    serviceAccount: string,
    request: { audience?: string; expirationSeconds: number; podName: string; podUid: string },
  ): Promise<{ token: string; expiresAt: Date }>;
  /** A PersistentVolumeClaim of the namespace, undefined when it does not exist. */
  claim(namespace: string, name: string): Promise<V1PersistentVolumeClaim | undefined>;
  /** A PersistentVolume, undefined when it does not exist. */
  volume(name: string): Promise<V1PersistentVolume | undefined>;
}

const isDirectory = (p: string): boolean => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

interface CachedToken {
  token: string;
  issuedAtMs: number;
  expiresAtMs: number;
}

export class PodVolumes {
  private plan: VolumePlan | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  /** The claims as they were when mounted. */
  private readonly mountedClaims = new Map<string, ClaimObjects>();
  private removed = false;

  constructor(
    private pod: V1Pod,
    /** The pod's own folder (its volumes go in `volumes/<name>`). */
    private readonly dir: string,
    private readonly source: VolumeSource,
    private readonly nodeName: string,
  ) {}

  /** The pod as last seen (labels and annotations feed downwardAPI files). */
  update(pod: V1Pod): void {
    this.pod = pod;
  }

  volumeDir(name: string): string {
    return path.join(this.dir, 'volumes', name);
  }

  /** Whether the pod has volumes that change with what they read (so `sync` is worth calling again). */
  get refreshes(): boolean {
    return (this.pod.spec?.volumes ?? []).some((v) => v.secret || v.configMap || v.projected || v.downwardAPI);
  }

  /**
   * Fetches, plans and writes. With problems the plan says so and nothing is written (files already written
   * by an earlier sync stay, as on a kubelet). Returns the plan and the volumes whose files changed.
   */
  async sync(nowMs = Date.now()): Promise<{ plan: VolumePlan; changed: string[] }> {
    const pod = this.pod;
    const ns = pod.metadata?.namespace ?? 'default';
    const needs = volumeNeeds(pod);
    const secrets = new Map<string, Record<string, Buffer>>();
    const configMaps = new Map<string, Record<string, Buffer>>();
    for (const name of needs.secrets) {
      const data = await this.source.secret(ns, name);
      if (data) secrets.set(name, data);
    }
    for (const name of needs.configMaps) {
      const data = await this.source.configMap(ns, name);
      if (data) configMaps.set(name, data);
    }
    const tokens = new Map<string, { token: string } | { error: string }>();
    for (const t of needs.tokens) {
      let cached = this.tokens.get(t.key);
      if (!cached || tokenDue(cached.issuedAtMs, cached.expiresAtMs, nowMs)) {
        try {
          const got = await this.source.token(ns, t.serviceAccountName, {
            expirationSeconds: t.expirationSeconds,
            podName: pod.metadata?.name ?? '',
            podUid: pod.metadata?.uid ?? '',
            ...(t.audience ? { audience: t.audience } : {}),
          });
          cached = { token: got.token, issuedAtMs: nowMs, expiresAtMs: got.expiresAt.getTime() };
          this.tokens.set(t.key, cached);
        } catch (err) {
          // a token still valid is kept; without one the volume cannot be mounted
          if (!cached || cached.expiresAtMs <= nowMs) {
            tokens.set(t.key, { error: (err as Error).message });
            continue;
          }
        }
      }
      tokens.set(t.key, { token: cached.token });
    }
    const claims = new Map<string, ClaimObjects>();
    for (const name of needs.claims) {
      const mounted = this.mountedClaims.get(name);
      if (mounted) {
        claims.set(name, mounted);
        continue;
      }
      const claim = await this.source.claim(ns, name);
      if (!claim) continue;
      const volumeName = claim.status?.phase === 'Bound' ? claim.spec?.volumeName : undefined;
      const volume = volumeName ? await this.source.volume(volumeName) : undefined;
      claims.set(name, { claim, ...(volume ? { volume } : {}) });
    }
    const plan = planVolumes(pod, { secrets, configMaps, tokens, claims, nodeName: this.nodeName });
    // a claim's folder must be there (the provisioner made it; a hostPath PV of type DirectoryOrCreate is made)
    for (const v of plan.volumes)
      if (v.kind === 'claim' && !v.create && !isDirectory(v.path))
        plan.problems.push({
          volume: v.name,
          message: `MountVolume.SetUp failed for volume "${v.name}" : hostPath type check failed: ${v.path} is not a directory (the folder of PersistentVolume ${v.volumeName}, claim ${v.claimName})`,
        });
    const changed: string[] = [];
    // a pod removed while this sync fetched gets no files back
    if (plan.problems.length === 0 && !this.removed) {
      for (const v of plan.volumes) {
        const dir = this.volumeDir(v.name);
        if (v.kind === 'files') {
          if (writeVolumeFiles(dir, v.files)) changed.push(v.name);
        } else if (v.kind === 'emptyDir') {
          if (!existsSync(dir)) {
            mkdirSync(dir, { recursive: true });
            chmodSync(dir, 0o777); // as the kubelet makes it (mkdir's mode is cut by the umask)
          }
        } else if (v.kind === 'claim') {
          if (v.create) mkdirSync(v.path, { recursive: true, mode: 0o755 });
          this.mountedClaims.set(v.claimName, claims.get(v.claimName)!);
        } else if (v.create === 'directory') {
          mkdirSync(v.path, { recursive: true, mode: 0o755 });
        } else if (v.create === 'file' && !existsSync(v.path)) {
          mkdirSync(path.dirname(v.path), { recursive: true });
          writeFileSync(v.path, '', { mode: 0o644 });
        }
      }
      this.plan = plan;
    }
    return { plan, changed };
  }

  /** The folders of emptyDir volumes with medium Memory (the sandbox mounts a tmpfs on each). */
  memoryDirs(): string[] {
    return (this.plan?.volumes ?? [])
      .filter((v) => v.kind === 'emptyDir' && v.memory)
      .map((v) => this.volumeDir(v.name));
  }

  /** Where the container binds what, after a sync without problems (a missing writable subPath is made). */
  hostMounts(container: string): HostMount[] {
    const plan = this.plan;
    if (!plan) return [];
    const byName = new Map(plan.volumes.map((v) => [v.name, v]));
    return (plan.mounts[container] ?? []).map((m) => {
      const v = byName.get(m.volume)!;
      const root = v.kind === 'hostPath' || v.kind === 'claim' ? v.path : this.volumeDir(v.name);
      const source = m.subPath ? path.join(root, m.subPath) : root;
      // a subPath of a writable volume that does not exist yet is made, as the kubelet does
      if (m.subPath && v.kind !== 'files' && !existsSync(source)) mkdirSync(source, { recursive: true, mode: 0o777 });
      return { source, target: m.mountPath, readOnly: m.readOnly };
    });
  }

  /** Removes the pod's folder (its volumes' files). */
  remove(): void {
    this.removed = true;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
