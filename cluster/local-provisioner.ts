/**
 * The local provisioner of `fnmesh cluster`, run by the node agent: watches PersistentVolumeClaims,
 * PersistentVolumes and StorageClasses, and carries out what cluster/provisioner-plan.ts decides (a folder
 * and a pre-bound PV for each claim of `fnmesh-local` the scheduler gave this node; the folder and the PV
 * removed once a claim is deleted). Level-based: every change, and every informer resync, reconciles the
 * whole view; a failed action is tried again shortly. At start it creates the default StorageClass
 * `fnmesh-local` when there is none of that name (so `fnmesh cluster`, with or without --helm, and every test
 * that runs a node agent have it; one that exists is kept as it is).
 */
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { KubeApiError, type KubeClient } from '../common/kube-client';
import { jsonInformerFactory, ResilientInformer } from '../common/kube-informer';
import { errorMessage } from '../common/errors';
import type { Logger } from '../common/logger';
import { LOCAL_STORAGE_CLASS, localStorageClass } from './local-storage-class';
import { provisionerActions, VOLUME_DIR_MODE, type ClaimRef, type ProvisionerAction } from './provisioner-plan';

export interface LocalProvisionerOptions {
  client: KubeClient;
  nodeName: string;
  /** Where the volumes' folders are made (`<runDir>/volumes`). */
  volumesDir: string;
  logger: Logger;
  /** An Event on a claim (ProvisioningSucceeded, ProvisioningFailed). */
  event(claim: ClaimRef, type: 'Normal' | 'Warning', reason: string, message: string): void;
  /** A claim was added or changed (the node agent retries the pods waiting for it). */
  onClaim?(claim: V1PersistentVolumeClaim): void;
  /** Informer resync period (default 30 s). */
  resyncMs?: number;
}

const RETRY_MS = 2_000;

export class LocalProvisioner {
  private readonly claims: ResilientInformer<V1PersistentVolumeClaim>;
  private readonly volumes: ResilientInformer<V1PersistentVolume>;
  private readonly classes: ResilientInformer<V1StorageClass>;
  private scheduled: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private stopped = false;
  /** The last refusal Event per claim uid (one Event per distinct message). */
  private readonly refused = new Map<string, string>();
  private readonly log: Logger;

  constructor(private readonly o: LocalProvisionerOptions) {
    this.log = o.logger.child({ component: 'local-provisioner' });
    const resyncMs = o.resyncMs ?? 30_000;
    const changed = (): void => this.schedule(0);
    this.claims = new ResilientInformer<V1PersistentVolumeClaim>({
      resource: 'persistentvolumeclaims',
      factory: jsonInformerFactory<V1PersistentVolumeClaim>({
        client: o.client,
        path: '/api/v1/persistentvolumeclaims',
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
      }),
      handlers: {
        add: (c) => this.onClaim(c),
        update: (c) => this.onClaim(c),
        delete: (c) => {
          this.refused.delete(c.metadata?.uid ?? '');
          changed();
        },
      },
      resyncMs,
      logger: this.log,
    });
    this.volumes = new ResilientInformer<V1PersistentVolume>({
      resource: 'persistentvolumes',
      factory: jsonInformerFactory<V1PersistentVolume>({
        client: o.client,
        path: '/api/v1/persistentvolumes',
        apiVersion: 'v1',
        kind: 'PersistentVolume',
      }),
      handlers: { add: changed, update: changed, delete: changed },
      resyncMs,
      logger: this.log,
    });
    this.classes = new ResilientInformer<V1StorageClass>({
      resource: 'storageclasses',
      factory: jsonInformerFactory<V1StorageClass>({
        client: o.client,
        path: '/apis/storage.k8s.io/v1/storageclasses',
        apiVersion: 'storage.k8s.io/v1',
        kind: 'StorageClass',
      }),
      handlers: { add: changed, update: changed, delete: changed },
      resyncMs,
      logger: this.log,
    });
  }

  async start(): Promise<void> {
    mkdirSync(this.o.volumesDir, { recursive: true });
    await this.installStorageClass();
    // the classes and volumes first: a claim is judged against them
    await this.classes.start();
    await this.volumes.start();
    await this.claims.start();
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.scheduled);
    await Promise.all([this.claims.stop(), this.volumes.stop(), this.classes.stop()]);
  }

  /** The default StorageClass, unless one of its name exists. */
  private async installStorageClass(): Promise<void> {
    try {
      await this.o.client.request('POST', '/apis/storage.k8s.io/v1/storageclasses', { body: localStorageClass() });
      this.log.info(
        `StorageClass ${LOCAL_STORAGE_CLASS} created (the default: its claims become folders of this node)`,
      );
    } catch (err) {
      if (err instanceof KubeApiError && err.code === 409) return;
      throw new Error(
        `cannot create the StorageClass ${LOCAL_STORAGE_CLASS}: ${errorMessage(err)}; the node agent needs to create storageclasses and persistentvolumes (run it with an admin kubeconfig)`,
        { cause: err },
      );
    }
  }

  private onClaim(c: V1PersistentVolumeClaim): void {
    this.schedule(0);
    this.o.onClaim?.(c);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.scheduled && ms > 0) return; // one sooner is already due
    clearTimeout(this.scheduled);
    this.scheduled = setTimeout(() => {
      this.scheduled = undefined;
      void this.reconcile();
    }, ms);
  }

  private async reconcile(): Promise<void> {
    this.running = true;
    let failed = false;
    try {
      const actions = provisionerActions({
        nodeName: this.o.nodeName,
        volumesDir: this.o.volumesDir,
        claims: this.claims.list(),
        volumes: this.volumes.list(),
        classes: this.classes.list(),
      });
      for (const a of actions) {
        if (this.stopped) return;
        if (!(await this.carryOut(a))) failed = true;
      }
    } finally {
      this.running = false;
    }
    if (this.again) {
      this.again = false;
      this.schedule(0);
    } else if (failed) this.schedule(RETRY_MS);
  }

  /** One action; false when it failed (tried again later). */
  private async carryOut(a: ProvisionerAction): Promise<boolean> {
    const { client } = this.o;
    if (a.kind === 'refuse') {
      if (this.refused.get(a.claim.uid) === a.message) return true;
      this.refused.set(a.claim.uid, a.message);
      this.log.warn(`claim ${a.claim.namespace}/${a.claim.name}: ${a.message}`);
      this.o.event(a.claim, 'Warning', 'ProvisioningFailed', a.message);
      return true;
    }
    if (a.kind === 'provision') {
      const name = a.volume.metadata!.name!;
      try {
        mkdirSync(a.dir, { recursive: true });
        chmodSync(a.dir, VOLUME_DIR_MODE); // mkdir's mode is cut by the umask
        await client.request('POST', '/api/v1/persistentvolumes', { body: a.volume });
      } catch (err) {
        if (err instanceof KubeApiError && err.code === 409) return true; // made by an earlier round
        const message = `failed to provision volume for claim ${a.claim.namespace}/${a.claim.name}: ${errorMessage(err)}`;
        this.log.warn(message);
        if (this.refused.get(a.claim.uid) !== message) {
          this.refused.set(a.claim.uid, message);
          this.o.event(a.claim, 'Warning', 'ProvisioningFailed', message);
        }
        return false;
      }
      this.refused.delete(a.claim.uid);
      this.log.info(`claim ${a.claim.namespace}/${a.claim.name}: provisioned volume ${name} at ${a.dir}`);
      this.o.event(
        a.claim,
        'Normal',
        'ProvisioningSucceeded',
        `Successfully provisioned volume ${name} (the folder ${a.dir} of node ${this.o.nodeName})`,
      );
      return true;
    }
    try {
      if (a.dir) rmSync(a.dir, { recursive: true, force: true });
      await client.request('DELETE', `/api/v1/persistentvolumes/${a.volume}`);
    } catch (err) {
      if (err instanceof KubeApiError && err.code === 404) return true;
      this.log.warn(`deleting the released volume ${a.volume} failed: ${errorMessage(err)}; trying again`);
      return false;
    }
    this.log.info(`volume ${a.volume} released: ${a.dir ? `its folder ${a.dir} removed, ` : ''}the PV deleted`);
    return true;
  }
}
