import pino, { type Logger, type DestinationStream } from 'pino';
import { isColorSupported, prettyFactory } from 'pino-pretty';

export type { Logger };

/**
 * One logger for the whole process: structured JSON lines on stdout (or a given stream), or
 * the same records as human-readable lines when a person is watching (see logFormatFor).
 * Secrets are removed twice: by key (any field named like a credential) and by value
 * (every secret the config loaded is registered here, and any string that contains one is
 * masked), because a secret can hide inside an error message or a URL as easily as in a field.
 */

const SECRET_KEYS = [
  'apiKey', 'secret', 'secretKey', 'password', 'token', 'botToken', 'authorization',
  'EXCHANGE_API_KEY', 'EXCHANGE_SECRET_KEY', 'API_KEY', 'API_SECRET', 'TELEGRAM_BOT_TOKEN',
  'INFLUXDB_TOKEN', 'DATABASE_URL',
  'TEMPORAL_API_KEY', 'TEMPORAL_ENCRYPTION_KEYS', 'TEMPORAL_TLS_KEY', 'CODEC_SERVER_TOKEN', 'encryptionKeys', 'clientCertPair',
];

const secretValues = new Set<string>();

/** Register a secret value so it is masked wherever it appears in a log line. */
export function registerSecret(value: string | undefined): void {
  // Very short values would mask ordinary words; real keys and tokens are long.
  if (value && value.length >= 6) secretValues.add(value);
}

export function maskSecrets(text: string): string {
  let out = text;
  for (const s of secretValues) {
    if (out.includes(s)) out = out.split(s).join('[REDACTED]');
  }
  // postgres://user:password@host -> postgres://user:[REDACTED]@host
  return out.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]+:)[^@\s]+@/gi, '$1[REDACTED]@');
}

function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return maskSecrets(value);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    return { type: value.name, message: maskSecrets(value.message), stack: value.stack ? maskSecrets(value.stack) : undefined };
  }
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrub(v, depth + 1);
  return out;
}

/** LOG_FORMAT: auto (the default) = pretty on a terminal, JSON when piped or redirected. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * The format of the log lines: LOG_FORMAT=json or pretty decides; unset, empty or auto, a
 * terminal (isTTY) gets pretty lines and anything else (a pipe, a file, docker logs, a test's
 * capture) JSON lines. An unknown value counts as auto here: the config loader reports it.
 */
export function logFormatFor({ isTTY, env = {} }: { isTTY: boolean | undefined; env?: Record<string, string | undefined> }): 'json' | 'pretty' {
  const wanted = env.LOG_FORMAT?.trim().toLowerCase();
  if (wanted === 'json' || wanted === 'pretty') return wanted;
  return isTTY === true ? 'pretty' : 'json';
}

export interface LoggerOptions {
  level?: string;
  name?: string;
  /** Default: stdout. A stream that says isTTY gets pretty lines unless format says otherwise. */
  destination?: DestinationStream & { isTTY?: boolean };
  /**
   * Default: for stdout, logFormatFor(stdout, process.env); for a given destination, its isTTY
   * alone (LOG_FORMAT is about the process's own output, not a caller's stream that reads JSON).
   */
  format?: LogFormat;
}

/**
 * stdout, written synchronously: a log line and the console output around it (trader up's
 * banner) reach the terminal or the pipe in the order they were made, and nothing is left in a
 * buffer when the process exits. One stream for every logger of the process.
 */
let stdoutSync: DestinationStream | undefined;
function stdout(): DestinationStream {
  stdoutSync ??= pino.destination({ fd: 1, sync: true });
  return stdoutSync;
}

/**
 * Pretty lines are made in this thread, synchronously, from the JSON line pino has already
 * redacted and masked (so the secrets rules hold in both formats): pino-pretty's prettifier,
 * not its worker-thread transport, so the order above holds for pretty lines too.
 */
function prettyDestination(target: DestinationStream, colorize: boolean): DestinationStream {
  const prettify = prettyFactory({ colorize, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name', singleLine: true });
  return { write: (line: string) => void target.write(prettify(line)) };
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const explicit = opts.format !== undefined && opts.format !== 'auto' ? opts.format : undefined;
  const format =
    explicit ??
    (opts.destination
      ? logFormatFor({ isTTY: opts.destination.isTTY })
      : logFormatFor({ isTTY: process.stdout.isTTY, env: process.env }));
  const out = opts.destination ?? stdout();
  // Colours only on the process's own terminal (colorette's check: NO_COLOR, FORCE_COLOR, TERM=dumb).
  const destination = format === 'pretty' ? prettyDestination(out, !opts.destination && isColorSupported) : out;
  return pino(
    {
      name: opts.name ?? 'durable-trader',
      level: (opts.level ?? process.env.LOG_LEVEL ?? 'info').toLowerCase(),
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]),
        censor: '[REDACTED]',
      },
      formatters: {
        level: (label) => ({ level: label }),
        log: (obj) => scrub(obj) as Record<string, unknown>,
      },
      hooks: {
        logMethod(args, method) {
          // The message string is not seen by formatters.log; mask it here.
          const masked = args.map((a) => (typeof a === 'string' ? maskSecrets(a) : a)) as typeof args;
          return method.apply(this, masked);
        },
      },
    },
    destination,
  );
}

let root: Logger | undefined;

/** The process-wide logger; created on first use with LOG_LEVEL from the environment. */
export function logger(): Logger {
  root ??= createLogger();
  return root;
}

/** Replace the process-wide logger (entry points do this once the config is loaded). */
export function setRootLogger(l: Logger): void {
  root = l;
}
