import fs from 'node:fs';
import { BUILTIN_STRATEGY_NAMES } from '../lib/engine/types';
import { readStrategyParams, resolveStrategyRef } from './strategies';
import path from 'node:path';
import { z } from 'zod';
import dotenv from 'dotenv';
import {
  TEMPORAL_SECRET_VARS,
  TEMPORAL_SECURITY_ENV,
  describeTemporalSecurity,
  readCodecServerSettings,
  readTemporalSecurity,
  temporalSecrets,
  type CodecServerSettings,
  type TemporalSecurity,
} from './temporal-security';
import { SQLITE_SYNCHRONOUS, type SqliteSynchronous } from './dev-server-lifecycle';
import { LOG_FORMATS, type LogFormat } from './logger';

/**
 * The one configuration loader. Variable names are those of the Python bot this project
 * succeeds (see the README's configuration table), so an operator's existing `.env` keeps working; a few aliases the
 * older docs used (API_KEY, API_SECRET, USE_ENSEMBLE) are accepted too.
 *
 * Every problem is collected and reported at once, with secrets masked, and the caller exits
 * with code 2 before anything starts: a half-valid config must never reach a trading loop.
 */

export const TIMEFRAMES = ['1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d'] as const;
export const STRATEGIES = BUILTIN_STRATEGY_NAMES;
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** Python's logging names, which the old bot's users have in their .env. */
const LOG_LEVEL_ALIASES: Record<string, (typeof LOG_LEVELS)[number]> = { warning: 'warn', critical: 'fatal' };

export const SECRET_VARS = ['EXCHANGE_API_KEY', 'EXCHANGE_SECRET_KEY', 'API_KEY', 'API_SECRET', 'TELEGRAM_BOT_TOKEN', 'INFLUXDB_TOKEN', 'DATABASE_URL', ...TEMPORAL_SECRET_VARS] as const;

const TRUE = ['true', '1', 'yes', 'on'];
const FALSE = ['false', '0', 'no', 'off'];

const bool = (def: boolean) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return def;
      const s = v.trim().toLowerCase();
      if (TRUE.includes(s)) return true;
      if (FALSE.includes(s)) return false;
      ctx.addIssue({ code: 'custom', message: 'expected true or false' });
      return z.NEVER;
    });

const num = (def: number, min: number, max: number, what: string, opts: { minExclusive?: boolean } = {}) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return def;
      const n = Number(v.trim());
      const tooLow = opts.minExclusive ? n <= min : n < min;
      if (!Number.isFinite(n) || tooLow || n > max) {
        ctx.addIssue({ code: 'custom', message: `expected ${what}` });
        return z.NEVER;
      }
      return n;
    });

const int = (def: number, min: number, max: number, what = `an integer from ${min} to ${max}`) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return def;
      const n = Number(v.trim());
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `expected ${what}` });
        return z.NEVER;
      }
      return n;
    });

const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const url = (protocols: string[]) =>
  optionalText.superRefine((v, ctx) => {
    if (v === undefined) return;
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: `expected a URL (${protocols.join(' or ')})` });
      return;
    }
    if (!protocols.includes(u.protocol.replace(/:$/, ''))) {
      ctx.addIssue({ code: 'custom', message: `expected a URL starting with ${protocols.map((p) => p + '://').join(' or ')}` });
    }
  });

/** BASE/QUOTE, optionally BASE/QUOTE:SETTLE (ccxt's unified symbol for derivatives). */
const SYMBOL_RE = /^[A-Z0-9]{1,20}\/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$/;

const symbols = z
  .string()
  .optional()
  .transform((v, ctx) => {
    const raw = v === undefined || v.trim() === '' ? 'BTC/USDT,ETH/USDT' : v;
    const list = raw.split(',').map((s) => s.trim().toUpperCase()).filter((s) => s !== '');
    const bad = list.filter((s) => !SYMBOL_RE.test(s));
    if (list.length === 0) ctx.addIssue({ code: 'custom', message: 'expected at least one symbol, e.g. BTC/USDT,ETH/USDT' });
    if (bad.length > 0) ctx.addIssue({ code: 'custom', message: `expected symbols as BASE/QUOTE separated by commas (bad: ${bad.join(', ')})` });
    const dupes = list.filter((s, i) => list.indexOf(s) !== i);
    if (dupes.length > 0) ctx.addIssue({ code: 'custom', message: `symbol listed twice: ${[...new Set(dupes)].join(', ')}` });
    return list;
  });

const adminIds = z
  .string()
  .optional()
  .transform((v, ctx) => {
    if (v === undefined || v.trim() === '') return [] as number[];
    const parts = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
    const bad = parts.filter((p) => !/^\d{1,15}$/.test(p));
    if (bad.length > 0) {
      ctx.addIssue({ code: 'custom', message: `expected numeric Telegram user ids separated by commas (bad: ${bad.join(', ')})` });
      return z.NEVER;
    }
    return parts.map(Number);
  });

const hostPort = optionalText.superRefine((v, ctx) => {
  if (v !== undefined && !/^[A-Za-z0-9._[\]:-]+:\d{1,5}$/.test(v)) {
    ctx.addIssue({ code: 'custom', message: 'expected host:port, e.g. localhost:7233' });
  }
});

/** A socket address to bind (the Temporal runtime takes an IP, not a host name). */
const bindAddress = optionalText.superRefine((v, ctx) => {
  if (v === undefined) return;
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[2]) : 0;
  const octetsOk = !m || m[1].startsWith('[') || m[1].split('.').every((o) => Number(o) <= 255);
  if (!m || !octetsOk || port < 1 || port > 65535) {
    ctx.addIssue({ code: 'custom', message: 'expected ip:port to serve Prometheus metrics on, e.g. 127.0.0.1:9464 (this machine only) or 0.0.0.0:9464 (all interfaces)' });
  }
});

const EnvSchema = z.object({
  EXCHANGE: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === '' ? 'binance' : v.trim().toLowerCase()))
    .pipe(z.string().regex(/^[a-z0-9]+$/, 'expected a ccxt exchange id such as binance, kraken, bybit')),
  EXCHANGE_API_KEY: optionalText,
  EXCHANGE_SECRET_KEY: optionalText,
  API_KEY: optionalText,
  API_SECRET: optionalText,
  SANDBOX: bool(false),
  EXCHANGE_API_URL: url(['http', 'https']),
  EXCHANGE_CCXT_OPTIONS: optionalText.transform((v, ctx) => {
    if (v === undefined) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'expected a JSON object of ccxt options, e.g. {"defaultType":"spot"}' });
      return z.NEVER;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      ctx.addIssue({ code: 'custom', message: 'expected a JSON object of ccxt options, e.g. {"defaultType":"spot"}' });
      return z.NEVER;
    }
    return parsed as Record<string, unknown>;
  }),
  DRY_RUN: bool(true),
  SYMBOLS: symbols,
  TIMEFRAME: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === '' ? '1h' : v.trim()))
    .pipe(z.enum(TIMEFRAMES, { error: `expected one of ${TIMEFRAMES.join(', ')}` })),
  STRATEGY: optionalText,
  STRATEGY_PARAMS: optionalText,
  STRATEGY_BUDGET_MS: int(1000, 1, 60_000, 'whole milliseconds from 1 to 60000: the longest a strategy may take on one candle'),
  USE_ENSEMBLE: bool(false),
  INITIAL_CAPITAL: num(10_000, 0, 1e12, 'a positive amount of quote currency, e.g. 10000', { minExclusive: true }),
  MAX_POSITION_SIZE: num(0.05, 0, 1, 'a fraction of equity above 0 and at most 1, e.g. 0.05 for 5%', { minExclusive: true }),
  STOP_LOSS_PCT: num(0.02, 0, 0.99, 'a fraction above 0 and below 1, e.g. 0.02 for 2%', { minExclusive: true }),
  TAKE_PROFIT_PCT: num(0.04, 0, 100, 'a fraction above 0, e.g. 0.04 for 4%', { minExclusive: true }),
  MAX_DRAWDOWN: num(0.15, 0, 1, 'a fraction above 0 and at most 1, e.g. 0.15 for 15%', { minExclusive: true }),
  INFLUXDB_URL: url(['http', 'https']),
  INFLUXDB_TOKEN: optionalText,
  INFLUXDB_ORG: optionalText,
  INFLUXDB_BUCKET: optionalText,
  TELEGRAM_BOT_TOKEN: optionalText.superRefine((v, ctx) => {
    if (v !== undefined && !/^\d{3,15}:[A-Za-z0-9_-]{20,}$/.test(v)) {
      ctx.addIssue({ code: 'custom', message: 'expected a BotFather token like 123456789:AA... (digits, colon, at least 20 characters)' });
    }
  }),
  TELEGRAM_ADMIN_IDS: adminIds,
  TELEGRAM_API_ROOT: url(['http', 'https']),
  LOG_LEVEL: z
    .string()
    .optional()
    .transform((v) => {
      const s = v === undefined || v.trim() === '' ? 'info' : v.trim().toLowerCase();
      return LOG_LEVEL_ALIASES[s] ?? s;
    })
    .pipe(z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')} (case-insensitive)` })),
  LOG_FORMAT: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === '' ? 'auto' : v.trim().toLowerCase()))
    .pipe(z.enum(LOG_FORMATS, { error: `expected one of ${LOG_FORMATS.join(', ')} (auto: human-readable lines on a terminal, JSON lines when piped)` })),
  TEMPORAL_ADDRESS: hostPort,
  TEMPORAL_NAMESPACE: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === '' ? 'default' : v.trim()))
    .pipe(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/, 'expected a Temporal namespace name (letters, digits, . _ -)')),
  TEMPORAL_TASK_QUEUE: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === '' ? 'trading' : v.trim())),
  TEMPORAL_CLI_PATH: optionalText,
  ...TEMPORAL_SECURITY_ENV,
  TEMPORAL_PORT: int(7233, 1, 65535),
  TEMPORAL_UI_PORT: int(8233, 1, 65535),
  TEMPORAL_METRICS_ADDRESS: bindAddress,
  TEMPORAL_SQLITE_SYNCHRONOUS: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === '' ? 'normal' : v.trim().toLowerCase()))
    .pipe(z.enum(SQLITE_SYNCHRONOUS, { error: `expected one of ${SQLITE_SYNCHRONOUS.join(', ')} (the dev server's SQLite synchronous setting)` })),
  WATCHDOG: bool(true),
  // A worker waiting on an idle queue shows a poll up to a minute old (a long poll lasts a minute):
  // anything under 70 s would call a healthy worker missing.
  WATCHDOG_NO_POLLER_SECONDS: int(120, 70, 86_400, 'whole seconds from 70 to 86400 (a healthy worker waiting on an idle queue shows a poll up to a minute old)'),
  WATCHDOG_INTERVAL_SECONDS: int(15, 1, 3_600, 'whole seconds from 1 to 3600'),
  DATABASE_URL: url(['postgres', 'postgresql']),
  POSTGRES_PORT: int(54329, 1, 65535),
  TRADER_HOME: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === '' ? './.data' : v.trim())),
});

/** ccxt's list of exchange ids, loaded on first use (ccxt takes ~0.5 s to load). */
let exchangeIds: string[] | undefined;
function knownExchangeIds(): string[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  exchangeIds ??= (require('ccxt') as { exchanges: string[] }).exchanges;
  return exchangeIds;
}

export interface AppConfig {
  exchange: {
    id: string;
    apiKey?: string;
    secret?: string;
    sandbox: boolean;
    /** EXCHANGE_API_URL: every REST request goes to this base URL instead (a mirror, a reverse proxy, a stand-in). */
    apiUrl?: string;
    /** EXCHANGE_CCXT_OPTIONS: merged into the ccxt exchange's `options`. */
    ccxtOptions?: Record<string, unknown>;
  };
  dryRun: boolean;
  mode: 'paper' | 'live';
  symbols: string[];
  timeframe: (typeof TIMEFRAMES)[number];
  /** STRATEGY: a built-in (rules, ensemble, ppo, hybrid), a strategy file's name (strategies/NAME.ts) or a path to one. */
  strategy: string;
  /** STRATEGY_PARAMS: JSON text or a JSON file; absent: the strategy's defaults. */
  strategyParams?: Record<string, unknown>;
  /** STRATEGY_BUDGET_MS: a strategy's answer taking longer is discarded (no entries on that candle) and alerted. */
  strategyBudgetMs: number;
  risk: { initialCapital: number; maxPositionSize: number; stopLossPct: number; takeProfitPct: number; maxDrawdown: number };
  influx?: { url: string; token: string; org: string; bucket: string };
  telegram?: { botToken: string; adminIds: number[]; apiRoot?: string };
  logLevel: (typeof LOG_LEVELS)[number];
  /** LOG_FORMAT: json, pretty, or auto (pretty on a terminal); see infra/logger.ts logFormatFor. */
  logFormat: LogFormat;
  /** metricsAddress: where this process serves the Temporal SDK's Prometheus metrics (unset: not served). */
  temporal: { address?: string; namespace: string; taskQueue: string; cliPath?: string; port: number; uiPort: number; metricsAddress?: string; sqliteSynchronous?: SqliteSynchronous } & TemporalSecurity;
  codecServer: CodecServerSettings;
  /** The trading watchdog (control/watchdog.ts): off with WATCHDOG=false. */
  watchdog: { enabled: boolean; noPollerAfterMs: number; intervalMs: number };
  databaseUrl?: string;
  postgresPort: number;
  home: string;
}

export interface ConfigProblem {
  variable: string;
  value: string | undefined;
  expected: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(formatProblems(problems));
    this.name = 'ConfigError';
  }
}

/** Shows enough of a secret to recognise a typo, never enough to use it. */
export function maskValue(variable: string, value: string | undefined): string {
  if (value === undefined) return '(unset)';
  // URLs may carry a password (user:password@host): shown with it masked.
  if (variable === 'DATABASE_URL' || variable === 'EXCHANGE_API_URL') return JSON.stringify(maskUrlPassword(value));
  if (!(SECRET_VARS as readonly string[]).includes(variable)) return JSON.stringify(value);
  // A key file's path is not the key, and the operator needs it to fix an unreadable file.
  if (variable === 'TEMPORAL_TLS_KEY' && !value.includes('-----BEGIN ')) return JSON.stringify(value);
  return `"${value.length > 8 ? value.slice(0, 2) : ''}***" (${value.length} characters, hidden)`;
}

/** user:password@ in a URL becomes user:***@. */
function maskUrlPassword(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@]*@/, '$1***@');
}

function urlPassword(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    return undefined;
  }
}

export function formatProblems(problems: ConfigProblem[]): string {
  const lines = problems.map((p) => `  - ${p.variable}=${maskValue(p.variable, p.value)}: ${p.expected}`);
  return `Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}\nNothing was started. See .env.example for every variable.`;
}

/**
 * Reads `.env` (if present) under the process environment: a variable already set in the
 * environment wins, as with docker-compose and systemd.
 */
export function readEnvironment(opts: { cwd?: string; envFile?: string; env?: NodeJS.ProcessEnv } = {}): Record<string, string | undefined> {
  const env = opts.env ?? process.env;
  const file = opts.envFile ?? env.ENV_FILE ?? path.join(opts.cwd ?? process.cwd(), '.env');
  let fromFile: Record<string, string> = {};
  if (fs.existsSync(file)) fromFile = dotenv.parse(fs.readFileSync(file));
  else if (opts.envFile ?? env.ENV_FILE) {
    throw new ConfigError([{ variable: 'ENV_FILE', value: file, expected: 'an existing .env file' }]);
  }
  return { ...fromFile, ...env };
}

export function parseConfig(env: Record<string, string | undefined>): AppConfig {
  const parsed = EnvSchema.safeParse(env);
  const problems: ConfigProblem[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const variable = String(issue.path[0] ?? '?');
      problems.push({ variable, value: env[variable], expected: issue.message });
    }
  }
  const e = parsed.success ? parsed.data : undefined;
  // Cross-field rules are checked on the raw values too, so that they are reported together
  // with the per-variable problems instead of one round of fixes at a time.
  const raw = (k: string) => (env[k] === undefined || env[k]!.trim() === '' ? undefined : env[k]!.trim());
  const apiKey = raw('EXCHANGE_API_KEY') ?? raw('API_KEY');
  const secret = raw('EXCHANGE_SECRET_KEY') ?? raw('API_SECRET');
  const dryRunRaw = (raw('DRY_RUN') ?? 'true').toLowerCase();
  if (FALSE.includes(dryRunRaw)) {
    if (!apiKey) problems.push({ variable: 'EXCHANGE_API_KEY', value: undefined, expected: 'required when DRY_RUN=false (live trading needs exchange keys)' });
    if (!secret) problems.push({ variable: 'EXCHANGE_SECRET_KEY', value: undefined, expected: 'required when DRY_RUN=false (live trading needs exchange keys)' });
  }
  if ((apiKey && !secret) || (!apiKey && secret)) {
    const missing = apiKey ? 'EXCHANGE_SECRET_KEY' : 'EXCHANGE_API_KEY';
    if (!problems.some((p) => p.variable === missing)) {
      problems.push({ variable: missing, value: undefined, expected: 'exchange keys come in pairs: set both EXCHANGE_API_KEY and EXCHANGE_SECRET_KEY, or neither' });
    }
  }
  if (raw('INFLUXDB_URL')) {
    for (const k of ['INFLUXDB_TOKEN', 'INFLUXDB_ORG'] as const) {
      if (!raw(k)) problems.push({ variable: k, value: undefined, expected: 'required when INFLUXDB_URL is set (metrics need a token and an organisation)' });
    }
  }
  if (raw('TELEGRAM_BOT_TOKEN') && !raw('TELEGRAM_ADMIN_IDS')) {
    problems.push({ variable: 'TELEGRAM_ADMIN_IDS', value: undefined, expected: 'required when TELEGRAM_BOT_TOKEN is set: the numeric user ids allowed to control the bot (nobody else can)' });
  }
  if (e && e.STOP_LOSS_PCT !== undefined && e.TAKE_PROFIT_PCT !== undefined && e.TAKE_PROFIT_PCT <= e.STOP_LOSS_PCT / 10) {
    problems.push({ variable: 'TAKE_PROFIT_PCT', value: env.TAKE_PROFIT_PCT, expected: `must be more than a tenth of STOP_LOSS_PCT (${e.STOP_LOSS_PCT}); a target that small is almost certainly a typo` });
  }
  if (e && !knownExchangeIds().includes(e.EXCHANGE)) {
    problems.push({ variable: 'EXCHANGE', value: env.EXCHANGE, expected: `expected a ccxt exchange id such as binance, kraken, bybit, okx (${knownExchangeIds().length} are known)` });
  }
  const security = readTemporalSecurity(raw, raw('TEMPORAL_ADDRESS'));
  problems.push(...security.problems.filter((p) => !problems.some((q) => q.variable === p.variable)));
  if (e && e.TEMPORAL_PORT === e.TEMPORAL_UI_PORT) {
    problems.push({ variable: 'TEMPORAL_UI_PORT', value: env.TEMPORAL_UI_PORT, expected: 'must differ from TEMPORAL_PORT' });
  }
  const strategy = e?.STRATEGY ?? (e?.USE_ENSEMBLE ? 'ensemble' : 'rules');
  let strategyParams: Record<string, unknown> | undefined;
  if (e) {
    try {
      resolveStrategyRef(strategy);
    } catch (err) {
      problems.push({ variable: 'STRATEGY', value: env.STRATEGY, expected: `${(err as Error).message.replace(/^strategy \S+: /, '')}; a built-in (${STRATEGIES.join(', ')}), a strategy file's name or a path to one` });
    }
    try {
      strategyParams = readStrategyParams(e.STRATEGY_PARAMS);
    } catch (err) {
      problems.push({ variable: 'STRATEGY_PARAMS', value: env.STRATEGY_PARAMS, expected: `JSON object text or a JSON file: ${(err as Error).message.replace(/^strategy params[^:]*: /, '')}` });
    }
  }
  if (problems.length > 0 || !e) throw new ConfigError(problems);

  return {
    exchange: { id: e.EXCHANGE, apiKey, secret, sandbox: e.SANDBOX, apiUrl: e.EXCHANGE_API_URL, ccxtOptions: e.EXCHANGE_CCXT_OPTIONS },
    dryRun: e.DRY_RUN,
    mode: e.DRY_RUN ? 'paper' : 'live',
    symbols: e.SYMBOLS,
    timeframe: e.TIMEFRAME,
    strategy,
    ...(strategyParams ? { strategyParams } : {}),
    strategyBudgetMs: e.STRATEGY_BUDGET_MS,
    risk: {
      initialCapital: e.INITIAL_CAPITAL,
      maxPositionSize: e.MAX_POSITION_SIZE,
      stopLossPct: e.STOP_LOSS_PCT,
      takeProfitPct: e.TAKE_PROFIT_PCT,
      maxDrawdown: e.MAX_DRAWDOWN,
    },
    influx: e.INFLUXDB_URL
      ? { url: e.INFLUXDB_URL, token: e.INFLUXDB_TOKEN!, org: e.INFLUXDB_ORG!, bucket: e.INFLUXDB_BUCKET ?? 'trading_bot' }
      : undefined,
    telegram: e.TELEGRAM_BOT_TOKEN ? { botToken: e.TELEGRAM_BOT_TOKEN, adminIds: e.TELEGRAM_ADMIN_IDS, apiRoot: e.TELEGRAM_API_ROOT } : undefined,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      cliPath: e.TEMPORAL_CLI_PATH,
      port: e.TEMPORAL_PORT,
      uiPort: e.TEMPORAL_UI_PORT,
      ...security.value,
      metricsAddress: e.TEMPORAL_METRICS_ADDRESS,
      sqliteSynchronous: e.TEMPORAL_SQLITE_SYNCHRONOUS,
    },
    codecServer: readCodecServerSettings(raw, e.TEMPORAL_UI_PORT),
    watchdog: { enabled: e.WATCHDOG, noPollerAfterMs: e.WATCHDOG_NO_POLLER_SECONDS * 1000, intervalMs: e.WATCHDOG_INTERVAL_SECONDS * 1000 },
    databaseUrl: e.DATABASE_URL,
    postgresPort: e.POSTGRES_PORT,
    home: path.resolve(e.TRADER_HOME),
  };
}

/** Environment plus `.env`, validated. Throws ConfigError listing every problem. */
export function loadConfig(opts: Parameters<typeof readEnvironment>[0] = {}): AppConfig {
  return parseConfig(readEnvironment(opts));
}

/** The secrets of a config, so the logger can mask them wherever they appear. */
export function secretsOf(cfg: AppConfig): string[] {
  return [cfg.exchange.apiKey, cfg.exchange.secret, urlPassword(cfg.exchange.apiUrl), cfg.telegram?.botToken, cfg.influx?.token, ...temporalSecrets(cfg.temporal, cfg.codecServer)].filter((s): s is string => !!s);
}

function omit<T extends object, K extends keyof T>(o: T, keys: K[]): Omit<T, K> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => !(keys as string[]).includes(k))) as Omit<T, K>;
}

/** The config as an operator may see it: secrets reduced to whether they are set. */
export function describeConfig(cfg: AppConfig): Record<string, unknown> {
  return {
    ...cfg,
    exchange: {
      ...cfg.exchange,
      apiKey: cfg.exchange.apiKey ? '(set)' : '(unset)',
      secret: cfg.exchange.secret ? '(set)' : '(unset)',
      apiUrl: cfg.exchange.apiUrl ? maskUrlPassword(cfg.exchange.apiUrl) : undefined,
    },
    telegram: cfg.telegram ? { ...cfg.telegram, botToken: '(set)' } : undefined,
    influx: cfg.influx ? { ...cfg.influx, token: '(set)' } : undefined,
    databaseUrl: cfg.databaseUrl ? maskUrlPassword(cfg.databaseUrl) : undefined,
    // Key material never leaves as is: the keys' ids, the certificates' subjects, '(set)'.
    temporal: { ...omit(cfg.temporal, ['tls', 'apiKey', 'encryptionKeys', 'uiCodecEndpoint']), ...describeTemporalSecurity(cfg.temporal) },
    codecServer: { ...cfg.codecServer, token: cfg.codecServer.token ? '(set)' : '(unset)' },
  };
}
