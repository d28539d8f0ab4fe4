import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * One logger for the whole process: structured JSON lines on stdout (or a given stream).
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

export interface LoggerOptions {
  level?: string;
  name?: string;
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
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
    opts.destination,
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
