import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { z } from 'zod';
import type { AppConfig } from '../../infra/config';
import { loadConfig } from '../../infra/config';
import { createLogger } from '../../infra/logger';
import type { Client } from '@temporalio/client';
import { connectTemporalClient } from '../../infra/temporal';
import { openDatabase, type Database } from '../../infra/postgres';
import { modelsDir, promoteModelVersion, registerModelVersion, type ModelVersionRow } from '../../models/registry';
import { trainModelVersion, type TrainProgress, type TrainResult, type TrainSettingsInput } from '../../models/train';
import { signalTradersToReload } from '../../activities/training';
import { UsageError } from '../../infra/errors';
import type postgres from 'postgres';
import { CandleStore } from '../../ledger/candle-store';
import { isBacktestInputError, loadStoreSeries } from '../../backtester/run';
import { candleFileName, formatCandleCsv } from '../../lib/candle-csv';
import { anyStoreOption, storeSelection } from '../candle-args';
import { intOption } from '../options';

/**
 * `trader train --data FILE... [--out DIR] [--seed N] [--ppo-steps N] [--promote]`, or with
 * `--since WHEN [--until WHEN] [--symbols A,B] [--timeframe TF] [--exchange ID]` instead of `--data`
 *
 * Trains one model version (the ensemble members and the PPO policy as .onnx files, a manifest,
 * report.json and report.md with the held-out evaluation; see models/train.ts) from recorded
 * candle CSVs or candle store series (read as `trader backtest` reads them; nothing is
 * downloaded: `trader data download` fills the store), with a progress bar per stage.
 *
 * With `--out DIR`, DIR is the version directory (it must not exist) and nothing else is touched:
 * `trader backtest --models DIR` reads it. Without it, the version goes under
 * `<TRADER_HOME>/models/<id>` and is registered in PostgreSQL (DATABASE_URL, or the embedded
 * server under TRADER_HOME) as a challenger; `--promote` also makes it the champion the traders
 * load (a scheduled retrain promotes only through its out-of-sample gate).
 */


export const TrainCommandOptions = z.object({
  data: z.array(z.string().min(1)).min(1, '--data needs at least one candle CSV file').optional(),
  exchange: z.string().optional(),
  symbols: z.union([z.string(), z.array(z.string())]).optional(),
  timeframe: z.string().optional(),
  since: z.string().optional(),
  until: z.string().optional(),
  out: z.string().min(1).optional(),
  seed: intOption('--seed', 0, 2 ** 31 - 1),
  ppoSteps: intOption('--ppo-steps', 64, 50_000_000),
  promote: z.boolean().optional(),
});
export type TrainCommandOptions = z.input<typeof TrainCommandOptions>;

export interface TrainCommandIo {
  info(line: string): void;
  warn(line: string): void;
  /** Draw progress bars (on stderr) rather than one line per finished stage. Default: stderr is a TTY. */
  bars?: boolean;
}

export interface TrainCommandDeps {
  config?: () => Pick<AppConfig, 'home' | 'databaseUrl' | 'postgresPort' | 'risk'> & Partial<Pick<AppConfig, 'temporal' | 'exchange' | 'symbols' | 'timeframe'>>;
  /** The ledger database: the registry and the candle store (default: opened from the configuration). */
  sql?: postgres.Sql;
  now?: () => number;
  /** Extra trainer settings (tests: smaller forests and PPO rollouts). */
  settings?: Partial<TrainSettingsInput>;
}

export interface TrainCommandResult extends TrainResult {
  registered?: ModelVersionRow;
  promoted: boolean;
  /** --promote: the running traders told to reload, or why none could be. */
  reloaded?: string[];
  reloadProblem?: string;
}

const consoleIo: TrainCommandIo = { info: (l) => console.log(l), warn: (l) => console.error(l) };

function progressReporter(io: TrainCommandIo): { onProgress(p: TrainProgress): void; stop(): void } {
  if (io.bars ?? process.stderr.isTTY) {
    const multi = new MultiBar(
      { format: ' {stage} [{bar}] {percentage}% {detail}', hideCursor: true, clearOnComplete: false, stopOnComplete: false, stream: process.stderr, barsize: 30 },
      Presets.shades_classic,
    );
    const bars = new Map<string, SingleBar>();
    return {
      onProgress(p) {
        let bar = bars.get(p.stage);
        if (!bar) {
          bar = multi.create(p.total, 0, { stage: p.stage.padEnd(10), detail: '' });
          bars.set(p.stage, bar);
        }
        bar.setTotal(p.total);
        bar.update(p.done, { stage: p.stage.padEnd(10), detail: (p.detail ?? '').slice(0, 50) });
      },
      stop: () => multi.stop(),
    };
  }
  let lastStage = '';
  return {
    onProgress(p) {
      if (p.done === p.total && p.detail === 'done' && p.stage !== lastStage) {
        lastStage = p.stage;
        io.warn(`${p.stage}: done`);
      }
    },
    stop: () => undefined,
  };
}

export async function runTrainCommand(raw: unknown, io: TrainCommandIo = consoleIo, deps: TrainCommandDeps = {}): Promise<TrainCommandResult> {
  const parsed = TrainCommandOptions.safeParse(raw);
  if (!parsed.success) throw new UsageError(parsed.error.issues.map((i) => (i.code === 'custom' ? i.message : `--${i.path.join('.')}: ${i.message}`)).join('; '));
  const opts = parsed.data;
  const storeArgs = { exchange: opts.exchange, symbols: opts.symbols, timeframe: opts.timeframe, since: opts.since, until: opts.until };
  if (opts.data && anyStoreOption(storeArgs)) throw new UsageError('--data reads candle files; --exchange, --symbols, --timeframe, --since and --until read the candle store: give one or the other');
  if (!opts.data && !anyStoreOption(storeArgs)) throw new UsageError('give candle files (--data FILE...) or candle store series (--since WHEN, with --symbols, --timeframe and --exchange defaulting to SYMBOLS, TIMEFRAME and EXCHANGE)');
  for (const f of opts.data ?? []) {
    if (!existsSync(f)) throw new UsageError(`--data ${f}: no such file`);
    if (statSync(f).isDirectory()) throw new UsageError(`--data ${f}: is a directory; give the candle CSV files`);
  }
  if (opts.out !== undefined && existsSync(opts.out)) throw new UsageError(`--out ${opts.out} already exists: a model version is written once; choose a new directory`);
  if (opts.out !== undefined && opts.promote) throw new UsageError('--promote registers the version as the champion; it does not go with --out (train into the registry instead)');

  const cfg = (deps.config ?? loadConfig)();
  const selection = opts.data
    ? undefined
    : storeSelection(storeArgs, { exchange: cfg.exchange?.id ?? 'binance', symbols: cfg.symbols ?? [], timeframe: cfg.timeframe ?? '1h' }, (deps.now ?? Date.now)());
  // Open the registry first: a run of minutes must not end in "cannot reach PostgreSQL".
  let db: Database | undefined;
  if (!deps.sql && (opts.out === undefined || selection)) {
    db = await openDatabase({ databaseUrl: cfg.databaseUrl, home: cfg.home, port: cfg.postgresPort, log: createLogger({ level: 'warn', name: 'train' }) });
  }
  const sql = deps.sql ?? db?.sql;
  const reporter = progressReporter(io);
  // Store series are written as conventional CSV files for the trainer, which reads files only.
  let snapshot: string | undefined;
  try {
    let files = opts.data ?? [];
    if (selection) {
      let series;
      try {
        series = await loadStoreSeries(new CandleStore(sql!), selection);
      } catch (err) {
        if (isBacktestInputError(err)) throw new UsageError((err as Error).message);
        throw err;
      }
      snapshot = mkdtempSync(path.join(os.tmpdir(), 'trader-train-store-'));
      files = series.map((s) => {
        const file = path.join(snapshot!, candleFileName(s.exchange, s.symbol, s.timeframe));
        writeFileSync(file, formatCandleCsv(s.candles));
        io.info(`candle store ${s.exchange} ${s.symbol} ${s.timeframe}: ${s.candles.length} candles, ${iso(s.candles[0].timestamp)} .. ${iso(s.candles[s.candles.length - 1].timestamp)} UTC`);
        return file;
      });
    }
    let result: TrainResult;
    try {
      result = await trainModelVersion(files, {
        ...deps.settings,
        seed: opts.seed ?? deps.settings?.seed ?? 1,
        ppoSteps: opts.ppoSteps ?? deps.settings?.ppoSteps,
        ...(opts.out !== undefined ? { out: path.resolve(opts.out) } : { modelsRoot: modelsDir(cfg.home) }),
        backtest: {
          initialCapital: cfg.risk.initialCapital,
          feeBps: 10,
          slippageBps: 0,
          risk: { maxPositionSize: cfg.risk.maxPositionSize, stopLossPct: cfg.risk.stopLossPct, takeProfitPct: cfg.risk.takeProfitPct, maxDrawdown: cfg.risk.maxDrawdown },
          ...deps.settings?.backtest,
        },
        onProgress: (p) => reporter.onProgress(p),
      });
    } catch (err) {
      if ((err as Error)?.name === 'TrainingInputError') throw new UsageError((err as Error).message);
      throw err;
    } finally {
      reporter.stop();
    }
    let registered: ModelVersionRow | undefined;
    let promoted = false;
    let reload: { reloaded?: string[]; reloadProblem?: string } = {};
    if (sql && opts.out === undefined) {
      registered = await registerModelVersion(sql, result.dir);
      if (opts.promote) {
        registered = (await promoteModelVersion(sql, result.manifest.id)).champion;
        promoted = true;
        reload = await reloadTraders(cfg, result.manifest.id);
      }
    }
    for (const line of summaryLines(result, registered, promoted)) io.info(line);
    if (reload.reloaded) io.info(`told ${reload.reloaded.length} running trader(s) to reload ${result.manifest.id}`);
    if (reload.reloadProblem) io.warn(`note: ${reload.reloadProblem}; running traders keep their model until they restart or are told to reload`);
    return { ...result, registered, promoted, ...reload };
  } finally {
    if (snapshot) rmSync(snapshot, { recursive: true, force: true });
    await db?.close();
  }
}

const iso = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');

/** Best effort after --promote: the traders of a running stack reload now rather than at their next start. */
async function reloadTraders(cfg: Partial<Pick<AppConfig, 'temporal'>>, version: string): Promise<{ reloaded?: string[]; reloadProblem?: string }> {
  if (!cfg.temporal) return { reloadProblem: 'no Temporal configuration' };
  let client: Client;
  try {
    client = await connectTemporalClient(cfg.temporal, { connectTimeout: '3 seconds' });
  } catch (err) {
    return { reloadProblem: (err as Error).message.split('\n')[0] };
  }
  try {
    const r = await signalTradersToReload(client, version, { by: `cli:${os.userInfo().username}`, reason: 'trader train --promote' });
    return r.failed.length > 0 ? { reloaded: r.signaled, reloadProblem: `${r.failed.length} trader(s) could not be signalled (${r.failed[0].error})` } : { reloaded: r.signaled };
  } catch (err) {
    return { reloadProblem: `could not reach the traders: ${(err as Error).message}` };
  } finally {
    await client.connection.close();
  }
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)} %`);

export function summaryLines(r: TrainResult, registered: ModelVersionRow | undefined, promoted: boolean): string[] {
  const rep = r.report;
  const c = rep.classifiers.test;
  const out = [
    `model ${r.manifest.id} -> ${r.dir}`,
    `held out ${rep.heldOut.from.slice(0, 16)} .. ${rep.heldOut.to.slice(0, 16)} UTC`,
    `AUC ${Object.entries(c).map(([k, m]) => `${k} ${m.auc.toFixed(4)}`).join(', ')}; ensemble accuracy ${c.ensemble?.accuracy.toFixed(4)}, log loss ${c.ensemble?.logLoss.toFixed(4)}, ECE ${c.ensemble?.ece.toFixed(4)}`,
    `backtests: ${rep.backtests.strategies.map((b) => `${b.strategy} ${pct(b.totalReturn)} (${b.trades} trades)`).join(', ')}; buy and hold ${pct(rep.backtests.buyAndHold)}`,
    `training ${(rep.timings.totalMs / 1000).toFixed(1)} s; report: ${path.join(r.dir, 'report.md')}`,
  ];
  if (registered) out.push(`registered as ${registered.role}${promoted ? '' : '; promote it with --promote, or let a scheduled retrain decide'}`);
  return out;
}
