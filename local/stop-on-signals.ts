/**
 * Ctrl-C (SIGINT), SIGTERM or SIGHUP stops a long-running command gracefully and exits 0; a second signal,
 * or one before there is anything to stop, kills every child at once.
 */
import { errorMessage } from '../common/errors';
import { killAllChildren } from './supervisor';

export function stopOnSignals(command: string, current: () => { stop(): Promise<void> } | undefined): void {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    const running = current();
    if (signals > 1 || !running) {
      if (signals > 1) console.error(`${command}: ${signal} again; killing everything now`);
      killAllChildren('SIGKILL');
      process.exit(signals > 1 ? 1 : 0);
    }
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`${command}: stopping failed: ${errorMessage(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
}
