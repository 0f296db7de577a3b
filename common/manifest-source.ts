/**
 * Rule sources: where the gateway (and the local mesh) get the current set of FunctionServices from.
 * `ManifestFileSource` reads YAML manifests from files and directories and follows every change.
 * A file that fails to parse keeps its last good contents (the error names the file and the field);
 * a deleted file removes its services; a namespace/name defined in two files is an error for the later one.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { ConfigError, errorMessage } from './errors';
import { isManifestFile, loadManifestFile, serviceKey, type FunctionService } from './manifest';
import { listManifestFiles } from './manifest-files';
import { silentLogger, type Logger } from './logger';

export interface RuleSource {
  /** Loads the current set, calls `onChange` with it, and keeps calling it with the whole set on every change. */
  start(onChange: (services: FunctionService[]) => void): Promise<void>;
  stop(): Promise<void>;
}

/** Hands a rule source's whole set to its listener; a listener that throws is logged, never the source's end. */
export function notifyRuleListener(
  onChange: ((services: FunctionService[]) => void) | undefined,
  services: FunctionService[],
  logger: Logger,
  source: string,
): void {
  try {
    onChange?.(services);
  } catch (err) {
    logger.error(`the ${source} change handler failed`, { error: errorMessage(err) });
  }
}

/** Annotation naming the manifest file a FunctionService was read from (used in error messages). */
export const SOURCE_FILE_ANNOTATION = 'fnmesh.io/source-file';

/** The absolute path of the file a FunctionService was read from, when a file source read it. */
export function sourceFileOf(fs: FunctionService): string | undefined {
  const file = fs.metadata.annotations?.[SOURCE_FILE_ANNOTATION];
  return file ? path.resolve(file) : undefined;
}

export interface ManifestFileSourceOptions {
  logger?: Logger;
  /** Changes closer together than this are loaded as one (milliseconds, default 100). */
  debounceMs?: number;
  /**
   * Every this many milliseconds the files are re-stat'ed and any whose size or mtime changed since it was
   * loaded is reloaded (default 2000; 0 disables). File watchers drop events (fast successive writes,
   * network and overlay filesystems, Kubernetes ConfigMap symlink swaps); this bounds how long one can hide.
   */
  resyncMs?: number;
}

interface FileState {
  /** Last good contents; undefined if the file never loaded. */
  services?: FunctionService[];
  error?: string;
  /** size:mtime of the version last read (good or bad), to notice changes a watcher missed. */
  version?: string;
}

async function versionOf(file: string): Promise<string | undefined> {
  try {
    const s = await stat(file);
    return `${s.size}:${s.mtimeMs}`;
  } catch {
    return undefined;
  }
}

async function isMissing(p: string): Promise<boolean> {
  try {
    await stat(p);
    return false;
  } catch {
    return true;
  }
}

export class ManifestFileSource implements RuleSource {
  private readonly paths: string[];
  private readonly logger: Logger;
  private readonly debounceMs: number;
  private readonly resyncMs: number;
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly files = new Map<string, FileState>();
  /** Which file owns each namespace/name (the first one to define it keeps it). */
  private readonly owners = new Map<string, string>();
  private watcher: FSWatcher | undefined;
  private dirty = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private loading: Promise<void> = Promise.resolve();
  private onChange: ((services: FunctionService[]) => void) | undefined;
  private stopped = false;

  constructor(paths: string[], options: ManifestFileSourceOptions = {}) {
    this.paths = paths.map((p) => path.resolve(p));
    this.logger = options.logger ?? silentLogger;
    this.debounceMs = options.debounceMs ?? 100;
    this.resyncMs = options.resyncMs ?? 2000;
  }

  async start(onChange: (services: FunctionService[]) => void): Promise<void> {
    if (this.paths.length === 0) throw new ConfigError('no manifest files or directories were given');
    for (const p of this.paths) {
      if (await isMissing(p))
        throw new ConfigError(
          `manifest path "${p}" does not exist: give existing FunctionService YAML files or directories`,
        );
    }
    this.onChange = onChange;
    // Watch first, then load: a change during the first load triggers a reload instead of being missed.
    const watcher = watch(this.paths, {
      ignoreInitial: true,
      persistent: true,
      ignored: (file, stats) => stats?.isFile() === true && !isManifestFile(file),
      awaitWriteFinish: false,
    });
    this.watcher = watcher;
    watcher.on('all', (event, file) => {
      if (event === 'addDir' || event === 'unlinkDir') {
        this.schedule(file, true);
        return;
      }
      if (isManifestFile(file)) this.schedule(file, false);
    });
    watcher.on('error', (err) => this.logger.error('cannot watch manifests', { error: errorMessage(err) }));
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    const initial = await this.listAll();
    for (const f of initial) await this.loadFile(f);
    this.emit();
    if (this.resyncMs > 0) {
      this.resyncTimer = setInterval(() => this.resync(), this.resyncMs);
      this.resyncTimer.unref();
    }
  }

  /** Reloads files whose size/mtime changed since they were read, and notices new or vanished files. */
  private resync(): void {
    if (this.stopped) return;
    this.loading = this.loading
      .then(async () => {
        const all = await this.listAll();
        const changed = new Set<string>();
        for (const f of all) {
          const state = this.files.get(f);
          if (!state || state.version !== (await versionOf(f))) changed.add(f);
        }
        for (const f of this.files.keys()) if (!all.includes(f)) changed.add(f);
        if (changed.size > 0) await this.reload(changed);
      })
      .catch((err: unknown) => this.logger.error('cannot re-read manifests', { error: errorMessage(err) }));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.watcher?.close();
    this.watcher = undefined;
    await this.loading;
  }

  /** The whole current set (for callers that want it without a callback). */
  current(): FunctionService[] {
    const out: FunctionService[] = [];
    const claimed = new Map<string, string>();
    const order = [...this.files.keys()].sort();
    // Keep previous owners first so a new file cannot steal a running service.
    const byOwnerFirst = [...order].sort((a, b) => this.ownsAny(b) - this.ownsAny(a));
    for (const file of byOwnerFirst) {
      for (const fs of this.files.get(file)?.services ?? []) {
        const key = serviceKey(fs);
        const owner = claimed.get(key);
        if (owner === undefined) {
          claimed.set(key, file);
          out.push(fs);
        } else if (owner !== file) {
          this.logger.error('a FunctionService is defined in two manifest files; the later one is ignored', {
            service: key,
            file,
            definedIn: owner,
            error: `${file}: ${key} is already defined in ${owner}; remove one of them`,
          });
        }
      }
    }
    this.owners.clear();
    for (const [k, f] of claimed) this.owners.set(k, f);
    return out;
  }

  private ownsAny(file: string): number {
    for (const f of this.owners.values()) if (f === file) return 1;
    return 0;
  }

  private async listAll(): Promise<string[]> {
    // The one lister `fnmesh validate` uses too, so both read the same files; sorted: the first file to
    // define a namespace/name keeps it.
    return [...new Set(listManifestFiles(this.paths))].sort();
  }

  private schedule(file: string, rescan: boolean): void {
    if (this.stopped) return;
    this.dirty.add(rescan ? '' : path.resolve(file));
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const batch = this.dirty;
      this.dirty = new Set();
      this.loading = this.loading
        .then(() => this.reload(batch))
        .catch((err: unknown) => {
          this.logger.error('cannot reload manifests', { error: errorMessage(err) });
        });
    }, this.debounceMs);
  }

  private async reload(batch: Set<string>): Promise<void> {
    if (this.stopped) return;
    if (batch.has('')) {
      // A directory appeared or vanished: rescan everything.
      const all = new Set(await this.listAll());
      for (const f of [...this.files.keys()]) if (!all.has(f)) batch.add(f);
      for (const f of all) batch.add(f);
      batch.delete('');
    }
    for (const file of [...batch].sort()) {
      if (await isMissing(file)) {
        if (this.files.delete(file)) this.logger.info('manifest file removed; its services are gone', { file });
      } else {
        await this.loadFile(file);
      }
    }
    if (this.stopped) return;
    this.emit();
    // chokidar drops a change that follows another on the same file within 50 ms: look once more.
    const check = setTimeout(() => {
      void (async () => {
        for (const file of batch) {
          const state = this.files.get(file);
          if (state && state.version !== (await versionOf(file))) this.schedule(file, false);
        }
      })();
    }, 75);
    check.unref();
  }

  private async loadFile(file: string): Promise<void> {
    const state = this.files.get(file) ?? {};
    const before = await versionOf(file);
    state.version = before;
    try {
      const services = await loadManifestFile(file);
      if ((await versionOf(file)) !== before) {
        // Still being written: read it again once it settles, keep what we had meanwhile.
        this.schedule(file, false);
        return;
      }
      for (const fs of services) {
        fs.metadata.annotations = { ...(fs.metadata.annotations ?? {}), [SOURCE_FILE_ANNOTATION]: file };
      }
      state.services = services;
      delete state.error;
      this.files.set(file, state);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.files.delete(file);
        return;
      }
      state.error = errorMessage(err);
      this.files.set(file, state);
      this.logger.error(
        state.services
          ? 'manifest file is not valid; its last good contents stay in use'
          : 'manifest file is not valid; it is ignored until fixed',
        { file, error: state.error },
      );
    }
  }

  private emit(): void {
    notifyRuleListener(this.onChange, this.current(), this.logger, 'manifest');
  }
}

/** A fixed set of services (no files): for tests and for a gateway started without manifests. */
export class StaticRuleSource implements RuleSource {
  private onChange: ((services: FunctionService[]) => void) | undefined;
  constructor(private services: FunctionService[] = []) {}
  async start(onChange: (services: FunctionService[]) => void): Promise<void> {
    this.onChange = onChange;
    onChange(this.services);
  }
  /** Replaces the set and notifies the listener. */
  set(services: FunctionService[]): void {
    this.services = services;
    this.onChange?.(services);
  }
  async stop(): Promise<void> {
    this.onChange = undefined;
  }
}
