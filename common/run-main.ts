/**
 * How every fnmesh process runs (gateway, sidecar, operator, broker, `fnmesh local`, `fnmesh cluster`): start
 * it; a bad setting (ConfigError) prints its message, which names the setting, and exits 2; any other failure
 * to start is printed and exits 1. SIGINT/SIGTERM stop it gracefully and exit 0 (1 when stopping fails); a
 * second signal, or one before there is anything to stop, exits at once. Light: errors only.
 */
import { ConfigError, errorMessage } from './errors';

export interface Stoppable {
  stop(): Promise<void>;
}

/** The part's own logger, once it has one (JSON lines); before that, runMain writes to stderr. */
export interface MainLogger {
  info(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

export interface RunMainOptions {
  /** Default SIGINT and SIGTERM. */
  signals?: readonly NodeJS.Signals[];
  /** Runs before an immediate exit (a second signal, or one during start): kill what would be left behind. */
  onForcedExit?: () => void;
}

/** What `start` is given: `useLogger(logger)` makes runMain report through the part's logger from then on. */
export interface MainContext {
  useLogger<L extends MainLogger>(logger: L): L;
}

export async function runMain<T extends Stoppable>(
  command: string,
  start: (main: MainContext) => Promise<T>,
  options: RunMainOptions = {},
): Promise<T> {
  let logger: MainLogger | undefined;
  const context: MainContext = { useLogger: (l) => (logger = l) };
  const report = (level: 'info' | 'error', message: string, meta: Record<string, unknown>): void => {
    if (logger) logger[level](message, meta);
    else console.error(`${command}: ${message} (${Object.values(meta).join(', ')})`);
  };
  let running: T | undefined;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1 || !running) {
      if (signals > 1) report('error', 'second signal: exiting now', { signal });
      options.onForcedExit?.();
      process.exit(signals > 1 ? 1 : 0);
    }
    report('info', 'signal received; stopping', { signal });
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        report('error', 'stopping failed', { error: errorMessage(err) });
        process.exit(1);
      },
    );
  };
  const signalNames = options.signals ?? ['SIGINT', 'SIGTERM'];
  for (const s of signalNames) process.on(s, onSignal);
  try {
    running = await start(context);
    return running;
  } catch (err) {
    for (const s of signalNames) process.off(s, onSignal);
    if (err instanceof ConfigError) {
      console.error(`${command}: ${err.message}`);
      process.exit(2);
    }
    console.error(`${command}: cannot start: ${errorMessage(err)}`);
    process.exit(1);
  }
}
