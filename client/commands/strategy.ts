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
 * The commands are declared in client/command-table.ts.
 */

/** `trader strategy list`. */
export function strategyListCommand(o: { json?: boolean }): void {
  // Loaded without the type-check (seconds per file): a file that does not compile is still named; `strategy check` and every run type-check it.
  const found = listStrategies({ typeCheck: false });
  if (o.json) {
    console.log(JSON.stringify(found, null, 2));
    return;
  }
  const rows = [['name', 'version', 'source', 'where', 'description'], ...found.map((s) => [s.name, s.version ?? '-', s.source ?? '-', s.origin, s.error ? `NOT LOADABLE: ${s.error}` : (s.description ?? '')])];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) console.log(r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ').trimEnd());
}

/** `trader strategy new NAME`. */
export function strategyNewCommand(name: string, o: { dir?: string; force?: boolean }): void {
  const { file, testFile } = newStrategyFile({ name, dir: o.dir, force: o.force });
  console.log(`wrote ${file}`);
  console.log(`wrote ${testFile}`);
  console.log(`next: trader backtest --strategy ${name} --data <candles.csv>   (see docs/strategies.md)`);
}

/** `trader strategy check NAME --data FILE...`: sets the exit code (1 when look-ahead is found). */
export async function strategyCheckCommand(name: string, o: { data: string[]; params?: string; tolerance?: string; json?: boolean }): Promise<void> {
  const tolerance = o.tolerance === undefined ? undefined : Number(o.tolerance);
  if (tolerance !== undefined && !Number.isFinite(tolerance)) throw new UsageError(`--tolerance: expected a number, got ${o.tolerance}`);
  const code = await runStrategyCheck({ ref: name, params: readStrategyParams(o.params), files: o.data, out: (l) => console.log(l), json: o.json, tolerance });
  process.exitCode = code;
}

/** `trader strategy set SYMBOL NAME`. */
export async function strategySetCommand(symbol: string, name: string, o: { params?: string; reason?: string }): Promise<void> {
  const cfg = loadConfig();
  const params = readStrategyParams(o.params);
  try {
    const r = await withControl(cfg, (c) => c.setStrategy(symbol, name, params, { by: who(), ...(o.reason ? { reason: o.reason } : {}) }));
    console.log(`${r.symbol}: ${r.strategy} from the next candle`);
  } catch (err) {
    if (err instanceof StrategyRefused) throw new UsageError(`refused, nothing changed: ${err.message}`);
    throw err;
  }
}
