import { Command, CommanderError } from 'commander';
import { Interrupted, UsageError } from '../infra/errors';
import { COMMANDS, load } from './command-table';

/**
 * The `trader` program: the commands of client/command-table.ts, each loading its module when it
 * runs, so that `trader --help` loads commander and the table only.
 */

/** Exit codes: 0 ok, 1 runtime failure, 2 bad input (config, arguments), 130 interrupted. */
export const EXIT_BAD_INPUT = 2;

export function buildProgram(): Command {
  const program = new Command('trader')
    .description('durable-trader: an AI crypto-trading bot on Temporal')
    .showHelpAfterError('(run `trader --help` for usage)')
    .exitOverride();
  for (const declare of COMMANDS) declare(program);
  return program;
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
  if (err instanceof UsageError) {
    console.error(`error: ${err.message}`);
    return EXIT_BAD_INPUT;
  }
  if (err instanceof Interrupted) {
    console.error(err.message);
    return 130;
  }
  // The classes of the configuration's and the strategies' errors live in modules a help text
  // does not load; an error of theirs has loaded them already, so asking costs nothing then.
  const { ConfigError } = load.config();
  if (err instanceof ConfigError) {
    console.error(err.message);
    return EXIT_BAD_INPUT;
  }
  if (err instanceof load.strategies().StrategyLoadError || err instanceof load.strategyRun().StrategyParamsError) {
    console.error(`error: ${err.message}`);
    return EXIT_BAD_INPUT;
  }
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  return 1;
}
