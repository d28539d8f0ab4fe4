import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError, describeConfig, loadConfig } from '../infra/config';
import { UsageError } from '../infra/errors';
import { runUp } from './commands/up';
import { runWorker } from './commands/worker';
import { registerFeaturesCommand } from './commands/features';
import { registerOpsCommands } from './commands/ops';
import { registerBacktestCommand } from './commands/backtest';
import { registerTrainCommand } from './commands/train';
import { registerScheduleCommand } from './commands/schedule';
import { registerHistoryCommands } from './commands/history';

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
    .option('--replay <file...>', 'replay recorded candle CSVs through the same workflows (paper exchange, simulated clock)')
    .addOption(new Option('--strategy <name>', 'decision strategy (default: STRATEGY)').choices(['rules', 'ensemble', 'ppo', 'hybrid']))
    .option('--speed <max|factor>', 'replay speed: max, or simulated seconds per real second', parseSpeed)
    .option('--exit-when-done', 'replay: stop everything once every file is exhausted')
    .option('--no-telegram', 'do not start the Telegram bot here even if TELEGRAM_BOT_TOKEN is set (it runs as its own service)')
    .action(async (opts: { replay?: string[]; strategy?: 'rules' | 'ensemble' | 'ppo' | 'hybrid'; speed?: 'max' | number; exitWhenDone?: boolean; telegram: boolean }) => {
      if (!opts.replay && (opts.speed !== undefined || opts.exitWhenDone)) throw new UsageError('--speed and --exit-when-done go with --replay');
      const cfg = loadConfig();
      await runUp(cfg, opts);
    });

  program
    .command('worker')
    .description('run one worker against TEMPORAL_ADDRESS and DATABASE_URL (the docker-compose services use this)')
    .addOption(new Option('--queue <name>', 'which worker').choices(['trading', 'telegram', 'training']).default('trading'))
    .action(async (opts: { queue: 'trading' | 'telegram' | 'training' }) => {
      const cfg = loadConfig();
      await runWorker(cfg, opts.queue);
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
  registerTrainCommand(program);
  registerScheduleCommand(program);
  registerHistoryCommands(program);
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = reportError(err);
  }
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
  if (err instanceof UsageError) {
    console.error(`error: ${err.message}`);
    return EXIT_BAD_INPUT;
  }
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  return 1;
}
