import { InvalidArgumentError, Option, type Command } from 'commander';
import { DEFAULT_RETRAIN_SCHEDULE_ID, DEFAULT_TRAINING_WINDOW_DAYS } from '../lib/contracts/retrain';
import type { UpArgs } from './commands/up';
import type { FeaturesCommandOptions } from './commands/features';
import type { BacktestCommandOptions } from './commands/backtest';
import type { TrainCommandOptions } from './commands/train';
import type { ScheduleRetrainOptions } from './commands/schedule';
import type { DataDownloadArgs, DataListArgs } from './commands/data';
import type { EvalCommandOptions } from './commands/eval';
import type { ReportCommandOptions } from './commands/report';
import type { HyperoptCommandOptions } from './commands/hyperopt';

/**
 * Every `trader` command: its name, description, arguments and options, and an action that loads
 * the command's module when the command runs. `trader --help` and `trader CMD --help` read this
 * table only, which imports commander and nothing heavy: the modules behind the actions pull in
 * ccxt, onnxruntime, the Temporal SDK and PostgreSQL's client, seconds of loading that a help
 * text does not need (`npm run bench -- startup`; test/unit/cli-startup.test.ts keeps it so).
 *
 * One entry per top-level command in COMMANDS, in the order of the help text. A new command:
 * a loader in `load` for its module, a function declaring it here, its name in COMMANDS. Keep
 * this file's imports to commander, types, and constants of dependency-free modules (lib/contracts);
 * a help text that quotes a constant of a heavy module copies it into HELP_DEFAULTS (a test holds
 * the copies equal to the code's values).
 */

export type CommandEntry = (program: Command) => void;

/* eslint-disable @typescript-eslint/no-require-imports -- a require at run time, not import(): the sources run under tsx's CommonJS hook, which does not serve import() */
/** The modules behind the commands, each loaded by the first action that needs it. */
export const load = {
  config: () => require('../infra/config') as typeof import('../infra/config'),
  strategies: () => require('../infra/strategies') as typeof import('../infra/strategies'),
  strategyRun: () => require('../lib/strategy/run') as typeof import('../lib/strategy/run'),
  up: () => require('./commands/up') as typeof import('./commands/up'),
  worker: () => require('./commands/worker') as typeof import('./commands/worker'),
  features: () => require('./commands/features') as typeof import('./commands/features'),
  ops: () => require('./commands/ops') as typeof import('./commands/ops'),
  backtest: () => require('./commands/backtest') as typeof import('./commands/backtest'),
  hyperopt: () => require('./commands/hyperopt') as typeof import('./commands/hyperopt'),
  train: () => require('./commands/train') as typeof import('./commands/train'),
  schedule: () => require('./commands/schedule') as typeof import('./commands/schedule'),
  history: () => require('./commands/history') as typeof import('./commands/history'),
  data: () => require('./commands/data') as typeof import('./commands/data'),
  codecServer: () => require('./commands/codec-server') as typeof import('./commands/codec-server'),
  eval: () => require('./commands/eval') as typeof import('./commands/eval'),
  report: () => require('./commands/report') as typeof import('./commands/report'),
  strategy: () => require('./commands/strategy') as typeof import('./commands/strategy'),
};
/* eslint-enable @typescript-eslint/no-require-imports */

/**
 * Values the help texts quote from modules too heavy to load for a help text (lib/engine,
 * lib/backtest, client/commands/eval): copies, which test/unit/cli-startup.test.ts compares with
 * the originals.
 */
export const HELP_DEFAULTS = {
  builtinStrategies: ['rules', 'ensemble', 'ppo', 'hybrid'],
  feeBps: 10,
  slippageBps: 0,
  evalFolds: 3,
} as const;

function parseSpeed(v: string): 'max' | number {
  if (v === 'max') return 'max';
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected "max" or a positive number of simulated seconds per real second, got "${v}"`);
  return n;
}

function parsePort(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new InvalidArgumentError(`expected a port from 0 (any free port) to 65535, got "${v}"`);
  return n;
}

const up: CommandEntry = (program) =>
  program
    .command('up')
    .description('start the local stack (PostgreSQL, Temporal dev server with Web UI, workers) and the trading workflows')
    .option('--replay [files...]', 'replay recorded candles through the same workflows (paper exchange, simulated clock): the CSV files given, or without files the candle store series chosen by --since etc.')
    .option('--exchange <id>', 'replay from the store: exchange of the series (default: EXCHANGE)')
    .option('--symbols <list>', 'replay from the store: comma-separated symbols (default: SYMBOLS)')
    .option('--timeframe <tf>', 'replay from the store: timeframe (default: TIMEFRAME)')
    .option('--since <when>', 'replay from the store: first candle open time (date, date and time in UTC, epoch ms, or 90d for 90 days ago)')
    .option('--until <when>', 'replay from the store: end, exclusive (default: now)')
    .option('--strategy <name|path>', 'decision strategy: a built-in (rules, ensemble, ppo, hybrid), a strategy file\'s name (strategies/NAME.ts) or a path to one (default: STRATEGY)')
    .option('--params <file.json>', "the strategy's parameters, a JSON file or JSON text (default: STRATEGY_PARAMS)")
    .option('--speed <max|factor>', 'replay speed: max, or simulated seconds per real second', parseSpeed)
    .option('--exit-when-done', 'replay: stop everything once every series is exhausted')
    .option('--telegram', 'start the Telegram bot with a replay too: a fire drill of stop, resume and emergency on recorded candles (needs TELEGRAM_BOT_TOKEN)')
    .option('--no-telegram', 'do not start the Telegram bot here even if TELEGRAM_BOT_TOKEN is set (it runs as its own service)')
    .option('--no-training', 'do not run the training worker here (it runs as its own service: trader worker --queue training)')
    .action(async (opts: UpArgs & { strategy?: string; params?: string; telegram?: boolean; training: boolean }) => {
      const cfg = load.config().loadConfig();
      const { replayRequest, runUp } = load.up();
      await runUp(cfg, { replay: replayRequest(opts, cfg), strategy: opts.strategy, strategyParams: load.strategies().readStrategyParams(opts.params), speed: opts.speed, exitWhenDone: opts.exitWhenDone, telegram: opts.telegram, training: opts.training });
    });

const worker: CommandEntry = (program) =>
  program
    .command('worker')
    .description('run one worker against TEMPORAL_ADDRESS and DATABASE_URL (the docker-compose services use this)')
    .addOption(new Option('--queue <name>', 'which worker').choices(['trading', 'telegram', 'training', 'research', 'optuna']).default('trading'))
    .option('--replay', 'join the replay that `trader up --replay` is running (its candles, strategy and capital, from its database)')
    .action(async (opts: { queue: 'trading' | 'telegram' | 'training' | 'research' | 'optuna'; replay?: boolean }) => {
      const cfg = load.config().loadConfig();
      await load.worker().runWorker(cfg, opts.queue, { replay: opts.replay });
    });

const config: CommandEntry = (program) => {
  const config = program.command('config').description('configuration');
  config
    .command('check')
    .description('validate the environment and .env; print the resolved configuration with secrets hidden')
    .action(() => {
      const { describeConfig, loadConfig } = load.config();
      console.log(JSON.stringify(describeConfig(loadConfig()), null, 2));
    });
};

const features: CommandEntry = (program) =>
  program
    .command('features')
    .description('compute the feature matrix and regime of a candle CSV (timestamp,open,high,low,close,volume) into a CSV')
    .option('--data <file>', 'candle CSV, named <exchange>_<BASE>-<QUOTE>_<timeframe>.csv unless --symbol/--timeframe are given')
    .option('--since <when>', 'instead of --data, a candle store series from this open time (2024-01-31, 2024-01-31T12:00 UTC, epoch ms, or 90d); --symbol defaults to the first of SYMBOLS')
    .option('--until <when>', 'candle store: end, exclusive (default: now)')
    .requiredOption('--out <file>', 'output CSV: timestamp, one column per feature, regime, regime_confidence')
    .option('--symbol <symbol>', "market symbol, e.g. 'BTC/USDT' (default: from the file name; store: the first of SYMBOLS)")
    .option('--timeframe <tf>', "candle timeframe, e.g. '1h' (default: from the file name; store: TIMEFRAME)")
    .option('--exchange <id>', 'ccxt exchange id (default: from the file name; store: EXCHANGE)')
    .action(async (opts: FeaturesCommandOptions) => {
      await load.features().runFeaturesCommand(opts);
    });

/** The operator's commands against a running stack, and the ledger's trades and equity (client/commands/ops.ts). */
const ops: CommandEntry = (program) => {
  program
    .command('status')
    .description('every symbol: trading status, position, last decision, PnL; the kill switch')
    .option('--json', 'machine-readable: an array with one object per symbol (symbol, tradingStatus, ...)')
    .action(async (o: { json?: boolean }) => {
      await load.ops().statusCommand(o);
    });

  program
    .command('positions')
    .description('open positions, from the symbol workflows')
    .option('--json', 'machine-readable')
    .action(async (o: { json?: boolean }) => {
      await load.ops().positionsCommand(o);
    });

  program
    .command('trades')
    .description('closed trades from the ledger (works after `up` has exited: the last run\'s ledger)')
    .option('--json', 'machine-readable: an array of trades with every field a backtest\'s trades carry (symbol, side, qty, entryTime, entryPrice, exitTime, exitPrice, fees, pnl, exitReason, entryOrderId, exitOrderId, stopPrice, targetPrice, and entryTag and strategy when the strategy gave them) and the exchange')
    .option('--replay', 'the ledger of the last replay, whatever ran last')
    .action(async (o: { json?: boolean; replay?: boolean }) => {
      await load.ops().tradesCommand(o);
    });

  program
    .command('equity')
    .description('equity, cash, exposure and drawdown over time, from the equity snapshots the portfolio writes every check (works after `up` has exited)')
    .option('--since <when>', 'from when: a date, a date and time (UTC), epoch ms, or a duration back from now such as 24h or 7d', '24h')
    .option('--every <period>', 'one row per period (its last snapshot): 1m, 15m, 1h, 4h, 1d...', '1h')
    .option('--json', 'machine-readable: { account, since, every, snapshots, rows, worstDrawdown } with times in epoch ms')
    .action(async (o: { since: string; every: string; json?: boolean }) => {
      await load.ops().equityCommand(o);
    });

  for (const [name, action, desc] of [
    ['stop', 'pause', 'no new entries on SYMBOL (or every symbol); protective exits keep working'],
    ['resume', 'resume', 'back to active (without SYMBOL: every symbol, and re-arms a tripped kill switch)'],
    ['reduce-only', 'reduceOnly', 'exits only on SYMBOL (or every symbol)'],
  ] as const) {
    program
      .command(`${name} [symbol]`)
      .description(desc)
      .option('--reason <text>', 'recorded in the audit trail and the workflow history')
      .action(async (symbol: string | undefined, o: { reason?: string }) => {
        await load.ops().statusChangeCommand(action, symbol, o);
      });
  }

  program
    .command('emergency')
    .description('close every position at market, cancel working orders, halt every symbol (trips the kill switch)')
    .option('--yes', 'required: you mean it')
    .option('--reason <text>', 'recorded in the audit trail')
    .action(async (o: { yes?: boolean; reason?: string }) => {
      await load.ops().emergencyCommand(o);
    });
};

const backtest: CommandEntry = (program) =>
  program
    .command('backtest')
    .description('replay recorded candles through the trading engine and the paper exchange; print metrics, optionally write trades and metrics as JSON')
    .option('--data <files...>', 'candle CSV file(s), one symbol each, named <exchange>_<BASE>-<QUOTE>_<timeframe>.csv')
    .option('--since <when>', 'instead of --data, candle store series from this candle open time (2024-01-31, 2024-01-31T12:00 UTC, epoch ms, or 90d)')
    .option('--until <when>', 'candle store: end, exclusive (default: now)')
    .option('--symbols <list>', 'candle store: comma-separated symbols (default: SYMBOLS)')
    .option('--timeframe <tf>', 'candle store: timeframe (default: TIMEFRAME)')
    .option('--exchange <id>', 'candle store: exchange (default: EXCHANGE)')
    .option('--strategy <name|path>', `a built-in (${HELP_DEFAULTS.builtinStrategies.join(', ')}), a strategy file's name (strategies/NAME.ts, examples/strategies/NAME.ts) or a path to one (default: STRATEGY, else rules)`)
    .option('--params <file.json>', "the strategy's parameters: a JSON file or JSON text (default: STRATEGY_PARAMS)")
    .option('--json <file>', 'write { trades, metrics, openPositions, config, statistics, monteCarlo, symbols, equityCurve, rejected } to this file')
    .option('--report <file.html>', 'write a self-contained HTML report: candles with entries, exits, stops and targets; equity and drawdown against buy and hold; monthly, per-symbol and per-exit-reason tables')
    .option('--monte-carlo <runs>', 'Monte Carlo of the closed trades (order shuffles and bootstrap resamples): 5/50/95 % bands of final return and max drawdown')
    .option('--seed <n>', 'seed of the Monte Carlo runs (default 1)')
    .option('--initial-capital <n>', 'starting cash in the quote currency, split evenly between the symbols (default: INITIAL_CAPITAL)')
    .option('--fee-bps <n>', `maker and taker fee in basis points (default: ${HELP_DEFAULTS.feeBps})`)
    .option('--slippage-bps <n>', `adverse slippage on market and stop fills, basis points (default: ${HELP_DEFAULTS.slippageBps})`)
    .option('--models <dir>', "model directory for a strategy that reads the model (default: the registry's champion, as trader up, else the committed bootstrap model)")
    .option('--account-gates', 'also apply the account-wide entry gates (max concurrent positions, total exposure, drawdown, daily loss); a replay through Temporal does not, so trades may then differ from `trader up --replay`')
    .action(async (opts: BacktestCommandOptions) => {
      await load.backtest().runBacktestCommand(opts);
    });

const hyperopt: CommandEntry = (program) =>
  program
    .command('hyperopt')
    .description("search a strategy's parameters (its `search` ranges) with Optuna over backtests, on Temporal: crash-proof, shared by any number of research workers; reports the Deflated Sharpe Ratio, the Probability of Backtest Overfitting and a holdout backtest")
    .option('--strategy <name|path>', 'the strategy (default: STRATEGY); its `search` ranges are the space')
    .option('--params <file.json>', 'parameters held fixed (JSON file or text); the searched ones override them')
    .option('--data <files...>', 'candle CSV file(s), one symbol each')
    .option('--since <when>', 'instead of --data, candle store series from this candle open time (2024-01-31, epoch ms, or 90d)')
    .option('--until <when>', 'candle store: end, exclusive (default: now)')
    .option('--symbols <list>', 'candle store: comma-separated symbols (default: SYMBOLS)')
    .option('--timeframe <tf>', 'candle store: timeframe (default: TIMEFRAME)')
    .option('--exchange <id>', 'candle store: exchange (default: EXCHANGE)')
    .option('--trials <n>', 'trials to run')
    .option('--loss <name>', 'sharpe, sortino, calmar or profit-drawdown (default sharpe)')
    .option('--spaces <list>', 'search only these spaces: entry, exit, stop, size (default: every range)')
    .option('--seed <n>', "the sampler's seed (default 1): the same seed and batch give the same trials")
    .option('--walk-forward <k>', 'score each trial over K consecutive test folds (averaged) instead of the whole search part (default 1)')
    .option('--holdout <share>', 'the last share of the data the search never sees, backtested with the best parameters at the end (default 20%)')
    .option('--batch <n>', 'trials asked for and run at once (default 8); more than the research workers only queues')
    .option('--startup-trials <n>', 'random trials before TPE takes over (default 10)')
    .option('--initial-capital <n>', 'starting cash (default: INITIAL_CAPITAL)')
    .option('--fee-bps <n>', `fee in basis points (default ${HELP_DEFAULTS.feeBps})`)
    .option('--slippage-bps <n>', `slippage in basis points (default ${HELP_DEFAULTS.slippageBps})`)
    .option('--run-id <id>', 'name the run (default: <strategy>-<UTC time>)')
    .option('--json <file>', 'write every trial (parameters, loss, folds, daily returns) and the result')
    .option('--report <file.html>', 'write an HTML report: loss over trials, best trials, importance, the guard, the holdout')
    .option('--resume <runId>', 'watch a run started before (after this command was killed)')
    .option('--apply <runId>', "write a finished run's best parameters to a params file")
    .option('--force', 'with --apply: write them even when the holdout lost or the Deflated Sharpe Ratio is below 0.95')
    .option('--out <file.json>', 'with --apply: the params file (default: <strategy dir>/<name>.params.json)')
    .option('--no-local-worker', 'run no research worker in this process (trader worker --queue research processes do the trials)')
    .option('--no-optuna-worker', 'start no Optuna worker here (one runs elsewhere: trader worker --queue optuna)')
    .option('--no-progress', 'no progress bar')
    .action(async (o: HyperoptCommandOptions) => {
      await load.hyperopt().runHyperoptCommand(o);
    });

const train: CommandEntry = (program) =>
  program
    .command('train')
    .description('train one model version (ensemble + PPO, exported to ONNX) from candle CSVs or candle store series, with an out-of-sample evaluation report')
    .option('--data <files...>', 'candle CSV file(s), one symbol each, one timeframe, named <exchange>_<BASE>-<QUOTE>_<timeframe>.csv')
    .option('--since <when>', 'instead of --data, candle store series from this candle open time (2024-01-31, 2024-01-31T12:00 UTC, epoch ms, or 365d)')
    .option('--until <when>', 'candle store: end, exclusive (default: now)')
    .option('--symbols <list>', 'candle store: comma-separated symbols (default: SYMBOLS)')
    .option('--timeframe <tf>', 'candle store: timeframe (default: TIMEFRAME)')
    .option('--exchange <id>', 'candle store: exchange (default: EXCHANGE)')
    .option('--out <dir>', 'write the version into this new directory instead of TRADER_HOME/models (and do not register it)')
    .option('--seed <n>', 'random seed (same data + seed = same model, bit for bit); default 1')
    .option('--ppo-steps <n>', 'PPO environment steps (default 100000)')
    .option('--promote', 'make the new version the champion the traders load')
    .action(async (opts: TrainCommandOptions) => {
      await load.train().runTrainCommand(opts);
    });

const schedule: CommandEntry = (program) => {
  const schedule = program.command('schedule').description('Temporal Schedules: periodic retraining');
  schedule
    .command('retrain')
    .description('create or update the Schedule that runs RetrainWorkflow on the training task queue (overlap: skip)')
    .requiredOption('--every <interval>', 'e.g. 7d, 24h, 2w')
    .option('--exchange <id>', 'candle store: exchange (default: EXCHANGE)')
    .option('--symbols <list>', 'candle store: comma-separated symbols (default: SYMBOLS)')
    .option('--timeframe <tf>', 'candle store: timeframe (default: TIMEFRAME)')
    .option('--window <days>', `candle store: train on the most recent window, e.g. 365d or 52w (default ${DEFAULT_TRAINING_WINDOW_DAYS}d)`)
    .option('--no-download', 'candle store: train on what is stored; do not download the missing part of the window first')
    .option('--data <files...>', 'instead of the candle store, these candle CSV files (the training worker must be able to read them)')
    .option('--seed <n>', 'training seed (default 1)')
    .option('--ppo-steps <n>', 'PPO environment steps (default 100000)')
    .option('--id <id>', `schedule id (default ${DEFAULT_RETRAIN_SCHEDULE_ID})`)
    .action(async (raw: ScheduleRetrainOptions) => {
      await load.schedule().scheduleRetrainCommand(raw);
    });
  schedule
    .command('list')
    .description('list the Schedules of the namespace')
    .action(async () => {
      await load.schedule().scheduleListCommand();
    });
};

const history: CommandEntry = (program) => {
  const history = program.command('history').description('workflow histories');
  history
    .command('export')
    .description('write the event history of every matching workflow as JSON (replayable with the SDK replayer)')
    .requiredOption('--out <dir>', 'directory to write into')
    .option('--query <visibility query>', 'e.g. \'WorkflowType = "symbolTraderWorkflow" AND ExecutionStatus = "Completed"\'')
    .option('--limit <n>', 'at most this many', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`--limit: expected a positive integer, got ${v}`);
      return n;
    })
    .action(async (o: { out: string; query?: string; limit?: number }) => {
      await load.history().historyExportCommand(o);
    });
};

const data: CommandEntry = (program) => {
  const data = program.command('data').description('the candle store: download candles from the exchange, list what is stored');
  data
    .command('download')
    .description('download closed candles into the candle store (resumable: a second run fetches only what is missing); --out also writes CSV files')
    .option('--exchange <id>', 'ccxt exchange id (default: EXCHANGE)')
    .option('--symbols <list>', 'comma-separated symbols, e.g. BTC/USDT,ETH/USDT (default: SYMBOLS)')
    .option('--timeframe <tf>', 'candle timeframe, 1m .. 1d (default: TIMEFRAME)')
    .requiredOption('--since <when>', 'first candle: 2024-01-31, 2024-01-31T12:00 (UTC), epoch ms, or 90d for 90 days ago')
    .option('--until <when>', 'end, exclusive (default: now; only closed candles are stored)')
    .option('--out <dir>', 'also write <exchange>_<BASE>-<QUOTE>_<tf>.csv files of the range into this directory')
    .action(async (opts: DataDownloadArgs) => {
      await load.data().runDataDownload(opts);
    });
  data
    .command('list')
    .description('what the candle store holds: per series the candles, first and last, and the gaps')
    .option('--exchange <id>', 'only this exchange')
    .option('--symbols <list>', 'only these symbols')
    .option('--timeframe <tf>', 'only this timeframe')
    .option('--gaps', 'list every gap (default: the first 5 per series)')
    .option('--json', 'print the coverage as JSON (times in epoch ms)')
    .action(async (opts: DataListArgs) => {
      await load.data().runDataList(opts);
    });
};

const codecServer: CommandEntry = (program) =>
  program
    .command('codec-server')
    .description('serve /encode and /decode so the Temporal Web UI and CLI show encrypted payloads decrypted (TEMPORAL_ENCRYPTION_KEYS, CODEC_SERVER_TOKEN)')
    .option('--port <n>', 'port to listen on (default CODEC_SERVER_PORT, 8888; 0: any free port)', parsePort)
    .option('--host <address>', 'address to listen on (default CODEC_SERVER_HOST, 127.0.0.1)')
    .action(async (o: { port?: number; host?: string }) => {
      await load.codecServer().runCodecServer(load.config().loadConfig(), o);
    });

const evaluate: CommandEntry = (program) =>
  program
    .command('eval')
    .description('walk-forward evaluation over several symbols and timeframes: per fold, train a version on the candles before it, then score the classifier and backtest rules / ensemble / ppo / hybrid against buy-and-hold, with a bootstrap interval of each model\'s Sharpe minus the rules\'')
    .requiredOption('--data <files...>', 'candle CSV files, one symbol each, named <exchange>_<BASE>-<QUOTE>_<timeframe>.csv; several timeframes are evaluated separately')
    .option('--models <dir>', 'keep every fold\'s model version under this new directory (default: a temporary one, removed)')
    .option('--folds <n>', `consecutive test periods per timeframe, after an initial training half (default ${HELP_DEFAULTS.evalFolds})`)
    .option('--seed <n>', 'training and bootstrap seed (default 1)')
    .option('--ppo-steps <n>', 'PPO environment steps per fold version (default 100000)')
    .option('--json [file]', 'the report as JSON: printed instead of the tables, or written to FILE')
    .action(async (opts: EvalCommandOptions) => {
      await load.eval().runEvalCommand(opts);
    });

const report: CommandEntry = (program) =>
  program
    .command('report')
    .description('the HTML report of an account from its ledger (live, paper or replay): candles with entries and exits, equity, drawdown, the tables of `trader backtest --report`')
    .option('--from-ledger', 'read the trades from the ledger (the last run\'s database; see --replay)')
    .requiredOption('--out <file.html>', 'where to write the self-contained HTML report')
    .option('--replay', 'the ledger of the last replay, whatever ran last')
    .option('--data <files...>', 'candle CSV files of the traded symbols, for the charts and marks (default: the candle store)')
    .option('--initial-capital <n>', 'the account\'s starting equity (default: INITIAL_CAPITAL)')
    .option('--monte-carlo <runs>', 'Monte Carlo of the closed trades: 5/50/95 % bands of final return and max drawdown')
    .option('--seed <n>', 'seed of the Monte Carlo runs (default 1)')
    .option('--json <file>', 'also write { trades, metrics, statistics, monteCarlo, openPositions, equityCurve }')
    .action(async (opts: ReportCommandOptions) => {
      await load.report().runReportCommand(opts);
    });

/** `trader strategy list | new | check | set` (client/commands/strategy.ts, docs/strategies.md). */
const strategy: CommandEntry = (program) => {
  const strategy = program.command('strategy').description('user strategies: list, new, check (look-ahead and warm-up), set (switch a running symbol)');

  strategy
    .command('list')
    .description('the strategies a name finds from here: built-ins, ./strategies, the project\'s strategies/ and examples/strategies/, with version and source hash')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) => {
      load.strategy().strategyListCommand(o);
    });

  strategy
    .command('new <name>')
    .description('write strategies/NAME.ts from the template, and a test that backtests it on the repo\'s fixture')
    .option('--dir <dir>', 'where (default: ./strategies)')
    .option('--force', 'overwrite existing files')
    .action((name: string, o: { dir?: string; force?: boolean }) => {
      load.strategy().strategyNewCommand(name, o);
    });

  strategy
    .command('check <name>')
    .description('look-ahead (every signal and indicator recomputed without the later candles) and warm-up (indicators under shorter and longer histories); exit 1 when look-ahead is found')
    .requiredOption('--data <files...>', 'candle CSV file(s)')
    .option('--params <file.json>', 'the strategy\'s parameters (JSON file or text)')
    .option('--tolerance <x>', 'relative tolerance of the warm-up comparison (default 1e-6)')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { data: string[]; params?: string; tolerance?: string; json?: boolean }) => {
      await load.strategy().strategyCheckCommand(name, o);
    });

  strategy
    .command('set <symbol> <name>')
    .description('switch a running symbol to another strategy (or version, or parameters) from its next candle; checked on a trading worker first, audited and alerted')
    .option('--params <file.json>', 'the strategy\'s parameters (JSON file or text; default: its defaults)')
    .option('--reason <text>', 'recorded in the audit trail and the workflow history')
    .action(async (symbol: string, name: string, o: { params?: string; reason?: string }) => {
      await load.strategy().strategySetCommand(symbol, name, o);
    });
};

/** Every top-level command, in the order of `trader --help`. */
export const COMMANDS: readonly CommandEntry[] = [up, worker, config, features, ops, backtest, hyperopt, train, schedule, history, data, codecServer, evaluate, report, strategy];
