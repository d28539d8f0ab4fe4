import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError, describeConfig, loadConfig } from '../infra/config';
import { Interrupted, UsageError } from '../infra/errors';
import { readStrategyParams, StrategyLoadError } from '../infra/strategies';
import { StrategyParamsError } from '../lib/strategy/run';
import { replayRequest, runUp, type UpArgs } from './commands/up';
import { runWorker } from './commands/worker';
import { registerFeaturesCommand } from './commands/features';
import { registerOpsCommands } from './commands/ops';
import { registerBacktestCommand } from './commands/backtest';
import { registerHyperoptCommand } from './commands/hyperopt';
import { registerTrainCommand } from './commands/train';
import { registerScheduleCommand } from './commands/schedule';
import { registerHistoryCommands } from './commands/history';
import { registerDataCommands } from './commands/data';
import { registerCodecServerCommand } from './commands/codec-server';
import { registerEvalCommand } from './commands/eval';
import { registerReportCommand } from './commands/report';
import { registerStrategyCommands } from './commands/strategy';

/** Exit codes: 0 ok, 1 runtime failure, 2 bad input (config, arguments), 130 interrupted. */
export const EXIT_BAD_INPUT = 2;


function parseSpeed(v: string): 'max' | number {
  if (v === 'max') return 'max';
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected "max" or a positive number of simulated seconds per real second, got "${v}"`);
  return n;
}

export function buildProgram(): Command {
  const program = new Command('trader')
    .description('durable-trader: an AI crypto-trading bot on Temporal')
    .showHelpAfterError('(run `trader --help` for usage)')
    .exitOverride();

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
      const cfg = loadConfig();
      await runUp(cfg, { replay: replayRequest(opts, cfg), strategy: opts.strategy, strategyParams: readStrategyParams(opts.params), speed: opts.speed, exitWhenDone: opts.exitWhenDone, telegram: opts.telegram, training: opts.training });
    });

  program
    .command('worker')
    .description('run one worker against TEMPORAL_ADDRESS and DATABASE_URL (the docker-compose services use this)')
    .addOption(new Option('--queue <name>', 'which worker').choices(['trading', 'telegram', 'training', 'research']).default('trading'))
    .option('--replay', 'join the replay that `trader up --replay` is running (its candles, strategy and capital, from its database)')
    .action(async (opts: { queue: 'trading' | 'telegram' | 'training' | 'research'; replay?: boolean }) => {
      const cfg = loadConfig();
      await runWorker(cfg, opts.queue, { replay: opts.replay });
    });

  const config = program.command('config').description('configuration');
  config
    .command('check')
    .description('validate the environment and .env; print the resolved configuration with secrets hidden')
    .action(() => {
      const cfg = loadConfig();
      console.log(JSON.stringify(describeConfig(cfg), null, 2));
    });

  registerOptionalCommands(program);
  return program;
}

/** Commands that live in their own modules, each exporting `register...Command(program)`. */
function registerOptionalCommands(program: Command): void {
  registerFeaturesCommand(program);
  registerOpsCommands(program);
  registerBacktestCommand(program);
  registerHyperoptCommand(program);
  registerTrainCommand(program);
  registerScheduleCommand(program);
  registerHistoryCommands(program);
  registerDataCommands(program);
  registerCodecServerCommand(program);
  registerEvalCommand(program);
  registerReportCommand(program);
  registerStrategyCommands(program);
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const code = reportError(err);
    process.exitCode = code;
    exitSoon(code);
  }
}

/**
 * A command that failed half-way may leave something behind that keeps Node running, and then
 * the process never ends: after `trader up` failed on a busy TEMPORAL_PORT, the Temporal Runtime
 * (installed before that check) kept its native log-forwarding thread alive, since the SDK shuts
 * the Runtime down only when its last connection closes and none was ever opened; its
 * SIGINT/SIGTERM hook (and ours, which only starts a graceful stop of a stack that no longer
 * exists) made the process deaf to SIGTERM too. The message is already out (stderr is
 * synchronous); whatever is still open gets a second to close, then the process exits.
 */
function exitSoon(code: number): void {
  setTimeout(() => process.exit(code), 1_000).unref();
}

/** Prints an error for a person and returns the exit code. */
export function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // commander already printed its message; help and version are not errors.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    return EXIT_BAD_INPUT;
  }
  if (err instanceof ConfigError) {
    console.error(err.message);
    return EXIT_BAD_INPUT;
  }
  if (err instanceof UsageError || err instanceof StrategyLoadError || err instanceof StrategyParamsError) {
    console.error(`error: ${err.message}`);
    return EXIT_BAD_INPUT;
  }
  if (err instanceof Interrupted) {
    console.error(err.message);
    return 130;
  }
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  return 1;
}
