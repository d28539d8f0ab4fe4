import type { Command } from 'commander';
import { loadConfig } from '../../infra/config';
import { UsageError } from '../../infra/errors';
import { listStrategies, readStrategyParams } from '../../infra/strategies';
import { StrategyRefused } from '../../control/trading-control';
import { runStrategyCheck } from './strategy-check';
import { newStrategyFile } from './strategy-new';
import { who, withControl } from './ops';

/**
 * `trader strategy list | new | check | set`: what strategies a name reaches, a new one from the
 * template, the look-ahead and warm-up checks, and switching a running symbol (docs/strategies.md).
 */
export function registerStrategyCommands(program: Command): void {
  const strategy = program.command('strategy').description('user strategies: list, new, check (look-ahead and warm-up), set (switch a running symbol)');

  strategy
    .command('list')
    .description('the strategies a name finds from here: built-ins, ./strategies, the project\'s strategies/ and examples/strategies/, with version and source hash')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) => {
      // Loaded without the type-check (seconds per file): a file that does not compile is still named; `strategy check` and every run type-check it.
      const found = listStrategies({ typeCheck: false });
      if (o.json) {
        console.log(JSON.stringify(found, null, 2));
        return;
      }
      const rows = [['name', 'version', 'source', 'where', 'description'], ...found.map((s) => [s.name, s.version ?? '-', s.source ?? '-', s.origin, s.error ? `NOT LOADABLE: ${s.error}` : (s.description ?? '')])];
      const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
      for (const r of rows) console.log(r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ').trimEnd());
    });

  strategy
    .command('new <name>')
    .description('write strategies/NAME.ts from the template, and a test that backtests it on the repo\'s fixture')
    .option('--dir <dir>', 'where (default: ./strategies)')
    .option('--force', 'overwrite existing files')
    .action((name: string, o: { dir?: string; force?: boolean }) => {
      const { file, testFile } = newStrategyFile({ name, dir: o.dir, force: o.force });
      console.log(`wrote ${file}`);
      console.log(`wrote ${testFile}`);
      console.log(`next: trader backtest --strategy ${name} --data <candles.csv>   (see docs/strategies.md)`);
    });

  strategy
    .command('check <name>')
    .description('look-ahead (every signal and indicator recomputed without the later candles) and warm-up (indicators under shorter and longer histories); exit 1 when look-ahead is found')
    .requiredOption('--data <files...>', 'candle CSV file(s)')
    .option('--params <file.json>', 'the strategy\'s parameters (JSON file or text)')
    .option('--tolerance <x>', 'relative tolerance of the warm-up comparison (default 1e-6)')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { data: string[]; params?: string; tolerance?: string; json?: boolean }) => {
      const tolerance = o.tolerance === undefined ? undefined : Number(o.tolerance);
      if (tolerance !== undefined && !Number.isFinite(tolerance)) throw new UsageError(`--tolerance: expected a number, got ${o.tolerance}`);
      const code = await runStrategyCheck({ ref: name, params: readStrategyParams(o.params), files: o.data, out: (l) => console.log(l), json: o.json, tolerance });
      process.exitCode = code;
    });

  strategy
    .command('set <symbol> <name>')
    .description('switch a running symbol to another strategy (or version, or parameters) from its next candle; checked on a trading worker first, audited and alerted')
    .option('--params <file.json>', 'the strategy\'s parameters (JSON file or text; default: its defaults)')
    .option('--reason <text>', 'recorded in the audit trail and the workflow history')
    .action(async (symbol: string, name: string, o: { params?: string; reason?: string }) => {
      const cfg = loadConfig();
      const params = readStrategyParams(o.params);
      try {
        const r = await withControl(cfg, (c) => c.setStrategy(symbol, name, params, { by: who(), ...(o.reason ? { reason: o.reason } : {}) }));
        console.log(`${r.symbol}: ${r.strategy} from the next candle`);
      } catch (err) {
        if (err instanceof StrategyRefused) throw new UsageError(`refused, nothing changed: ${err.message}`);
        throw err;
      }
    });
}
