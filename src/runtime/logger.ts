import winston from 'winston';

/** Structured logger; `meta` goes out as JSON fields. Never pass Secret data. */
export interface Logger {
  error(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  debug(message: string, meta?: Record<string, unknown>): void;
  child(meta: Record<string, unknown>): Logger;
}

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/**
 * JSON lines on stderr, so stdout stays free for tools that print results.
 * winston runs every call through its formats (timestamp, JSON) before a
 * transport drops it by level, so disabled levels are cut off here: a debug
 * line in a hot path costs nothing at the default level.
 */
export function createLogger(level: LogLevel, stream: NodeJS.WritableStream = process.stderr): Logger {
  const logger = winston.createLogger({
    level,
    format: winston.format.combine(
      winston.format.timestamp(),
      winston.format.errors({ stack: false }),
      winston.format.json(),
    ),
    transports: [new winston.transports.Stream({ stream })],
  });
  return levelGated(logger, LOG_LEVELS.indexOf(level));
}

const ignore = (): void => undefined;

function levelGated(logger: winston.Logger, maxLevel: number): Logger {
  const at =
    (level: LogLevel) =>
    (message: string, meta?: Record<string, unknown>): void => {
      logger.log(level, message, meta);
    };
  const enabled = (level: LogLevel) => LOG_LEVELS.indexOf(level) <= maxLevel;
  return {
    error: enabled('error') ? at('error') : ignore,
    warn: enabled('warn') ? at('warn') : ignore,
    info: enabled('info') ? at('info') : ignore,
    debug: enabled('debug') ? at('debug') : ignore,
    child: (meta) => levelGated(logger.child(meta), maxLevel),
  };
}

/** A logger that drops everything, for unit tests. */
export const silentLogger: Logger = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  child: () => silentLogger,
};
