import type { Logger } from '../logger';

/** A Logger for people: one plain line per message (`error: ...`), meta as key=value. */
export function humanLogger(print: (line: string) => void, debug: boolean): Logger {
  const fmt = (level: string, message: string, meta?: Record<string, unknown>): void => {
    const extra = Object.entries(meta ?? {})
      .map(([k, v]) => (k === 'error' ? `: ${String(v)}` : ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`))
      .sort((a, b) => Number(a.startsWith(':')) - Number(b.startsWith(':')))
      .join('');
    print(`${level === 'info' ? '' : `${level}: `}${message}${extra}`);
  };
  const logger: Logger = {
    debug: (m, meta) => (debug ? fmt('debug', m, meta) : undefined),
    info: (m, meta) => fmt('info', m, meta),
    warn: (m, meta) => fmt('warning', m, meta),
    error: (m, meta) => fmt('error', m, meta),
    child: () => logger,
  };
  return logger;
}
