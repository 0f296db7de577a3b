import winston from 'winston';
import type { LogLevel } from './log-levels';

export { LOG_LEVELS, type LogLevel } from './log-levels';

/** The small logger interface every part uses: JSON lines, and `child(meta)` for a unit of work. */
export interface Logger {
  debug(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
  child(meta: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Set on every line, e.g. `{component: 'gateway'}`. */
  defaultMeta?: Record<string, unknown>;
  /** Where lines go; defaults to stdout. */
  stream?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console();
  const logger = winston.createLogger({
    level: level === 'silent' ? 'error' : level,
    silent: level === 'silent',
    format: winston.format.combine(
      winston.format.timestamp(),
      winston.format.errors({ stack: false }),
      winston.format.json(),
    ),
    defaultMeta: options.defaultMeta,
    transports: [transport],
  });
  return wrap(logger);
}

function wrap(logger: winston.Logger): Logger {
  // winston builds and pipes a record even for a level it then drops: skip those calls up front (a
  // debug line per reconcile is otherwise a measurable part of the operator's CPU).
  const on = (level: string): boolean => !logger.silent && logger.isLevelEnabled(level);
  return {
    debug: (message, meta) => void (on('debug') && logger.debug(message, meta)),
    info: (message, meta) => void (on('info') && logger.info(message, meta)),
    warn: (message, meta) => void (on('warn') && logger.warn(message, meta)),
    error: (message, meta) => void (on('error') && logger.error(message, meta)),
    child: (meta) => wrap(logger.child(meta)),
  };
}

/** A logger that drops everything: for tests and benchmarks that do not read logs. */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
