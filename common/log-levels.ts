/** The log levels every part accepts (FNMESH_LOG_LEVEL), apart from the logger so that settings tables load no winston. */
/** The variable every part reads its log level from. */
export const LOG_LEVEL_VAR = 'FNMESH_LOG_LEVEL';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];
