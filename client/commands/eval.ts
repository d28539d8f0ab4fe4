import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { AppConfig } from '../../infra/config';
import { loadConfig } from '../../infra/config';
import { UsageError } from '../../infra/errors';
import { writeAtomically } from '../../infra/files';
import { riskInputFromEnv } from '../../lib/risk';
import type { TrainSettingsInput } from '../../models/train';
import { loadTrainingFiles, TrainingInputError, type TrainingSeries } from '../../models/training-data';
import { walkForwardEvaluation, type WalkForwardReport } from '../../models/walk-forward';
import { intOption } from '../options';

/**
 * `trader eval --data FILE... [--models DIR] [--folds N] [--seed N] [--ppo-steps N] [--json [OUT]]`
 *
 * Walk-forward evaluation (models/walk-forward.ts) over several symbols and timeframes: per
 * timeframe, a model version is trained before each of N consecutive test periods (folds) and
 * evaluated on it with the training report's evaluation: the served ensemble's AUC, log loss and
 * calibration, and out-of-sample backtests of rules / ensemble / ppo / hybrid against
 * buy-and-hold (Sharpe, max drawdown, trades), each model strategy with a bootstrap interval of
 * its Sharpe ratio minus the rules'. Then the folds pooled per timeframe.
 *
 * `--models DIR` keeps every fold's version under DIR (`<timeframe>-fold-<k>`, each usable with
 * `trader backtest --models`); DIR must not exist or be empty. Without it the versions go to a
 * temporary directory removed at the end. `--json` prints the report as JSON instead of the
 * tables; `--json OUT` writes it to OUT and prints the tables.
 */


export const EvalCommandOptions = z.object({
  data: z.array(z.string().min(1)).min(1, '--data needs at least one candle CSV file'),
  models: z.string().min(1).optional(),
  folds: intOption('--folds', 1, 10),
  seed: intOption('--seed', 0, 2 ** 31 - 1),
  ppoSteps: intOption('--ppo-steps', 64, 50_000_000),
  json: z.union([z.boolean(), z.string().min(1)]).optional(),
});
export type EvalCommandOptions = z.input<typeof EvalCommandOptions>;

export interface EvalCommandIo {
  info(line: string): void;
  warn(line: string): void;
}

export interface EvalCommandDeps {
  config?: () => Pick<AppConfig, 'risk'>;
  /** Extra trainer settings (tests: small forests, few PPO steps). */
  settings?: Partial<TrainSettingsInput>;
}

const consoleIo: EvalCommandIo = { info: (l) => console.log(l), warn: (l) => console.error(l) };

export const DEFAULT_FOLDS = 3;

export async function runEvalCommand(raw: unknown, io: EvalCommandIo = consoleIo, deps: EvalCommandDeps = {}): Promise<WalkForwardReport> {
  const parsed = EvalCommandOptions.safeParse(raw);
  if (!parsed.success) throw new UsageError(parsed.error.issues.map((i) => (i.code === 'custom' ? i.message : `--${i.path.join('.')}: ${i.message}`)).join('; '));
  const opts = parsed.data;
  for (const f of opts.data) {
    if (!fs.existsSync(f)) throw new UsageError(`--data ${f}: no such file`);
    if (fs.statSync(f).isDirectory()) throw new UsageError(`--data ${f}: is a directory; give the candle CSV files`);
  }
  const jsonFile = typeof opts.json === 'string' ? opts.json : undefined;
  if (jsonFile !== undefined && opts.data.includes(jsonFile)) throw new UsageError('--json is one of the input files; refusing to overwrite candles');
  if (opts.models !== undefined && fs.existsSync(opts.models) && (!fs.statSync(opts.models).isDirectory() || fs.readdirSync(opts.models).length > 0)) {
    throw new UsageError(`--models ${opts.models}: exists and is not an empty directory; fold versions are written once, choose a new directory`);
  }
  let series: TrainingSeries[];
  try {
    series = loadTrainingFilesByTimeframe(opts.data);
  } catch (err) {
    if (err instanceof TrainingInputError) throw new UsageError(err.message);
    throw err;
  }
  const cfg = (deps.config ?? loadConfig)();
  const modelsDir = opts.models ? path.resolve(opts.models) : fs.mkdtempSync(path.join(os.tmpdir(), 'trader-eval-'));
  const folds = opts.folds ?? DEFAULT_FOLDS;
  let lastLine = '';
  let report: WalkForwardReport;
  try {
    report = await walkForwardEvaluation(series, {
      folds,
      modelsDir,
      settings: {
        ...deps.settings,
        seed: opts.seed ?? deps.settings?.seed ?? 1,
        ...(opts.ppoSteps !== undefined ? { ppoSteps: opts.ppoSteps } : {}),
        backtest: { initialCapital: cfg.risk.initialCapital, feeBps: 10, slippageBps: 0, risk: riskInputFromEnv(cfg.risk) as Record<string, unknown>, ...deps.settings?.backtest },
      },
      onProgress: (p) => {
        if (p.train.detail !== 'done') return;
        const line = `${p.timeframe} fold ${p.fold}/${p.folds}: ${p.train.stage} done`;
        if (line !== lastLine) io.warn((lastLine = line));
      },
    });
  } catch (err) {
    if (err instanceof TrainingInputError) throw new UsageError(err.message);
    throw err;
  } finally {
    if (!opts.models) fs.rmSync(modelsDir, { recursive: true, force: true });
  }
  if (opts.json === true) {
    io.info(JSON.stringify(report, null, 2));
    return report;
  }
  if (jsonFile !== undefined) writeAtomically(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  for (const line of evalTables(report)) io.info(line);
  if (opts.models) io.info(`fold versions kept under ${modelsDir} (trader backtest --models ${path.join(modelsDir, `${report.results[0]?.timeframe ?? '1h'}-fold-1`)} ...)`);
  if (jsonFile !== undefined) io.info(`wrote ${jsonFile}`);
  return report;
}

/** Files grouped by timeframe (loadTrainingFiles wants one timeframe per call). */
function loadTrainingFilesByTimeframe(files: string[]): TrainingSeries[] {
  const out: TrainingSeries[] = [];
  const byTf = new Map<string, string[]>();
  for (const f of files) {
    const tf = /_([0-9]+[smhdwM])\.csv$/i.exec(path.basename(f))?.[1] ?? '';
    byTf.set(tf, [...(byTf.get(tf) ?? []), f]);
  }
  for (const group of byTf.values()) out.push(...loadTrainingFiles(group));
  return out;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)} %`);
const f2 = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x.toFixed(2));
const f3 = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x.toFixed(3));
const day = (iso: string) => iso.slice(0, 10);

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c <= 1 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd());
}

const ci = (d: { observed: number; low: number; high: number } | null | undefined) => (d ? `${f2(d.observed)} [${f2(d.low)}, ${f2(d.high)}]` : '-');

export function evalTables(r: WalkForwardReport): string[] {
  const symbols = [...new Set(r.data.map((d) => d.symbol))];
  const out = [
    `Walk-forward evaluation: ${r.folds} fold(s) per timeframe over ${symbols.join(', ')} (${[...new Set(r.data.map((d) => d.timeframe))].join(', ')}); every fold trains a version on the candles before it and trades the fold out of sample`,
    '',
    'Classifier (the served ensemble on each fold\'s rows) and the thresholds fitted on the fold version\'s validation rows:',
    ...table([
      ['tf', 'fold', 'test period', 'rows', 'AUC', 'log loss', 'ECE', 'enter at', 'exit at', 'validation EV'],
      ...r.results.map((f) => [f.timeframe, String(f.fold), `${day(f.from)} .. ${day(f.to)}`, String(f.classifier?.rows ?? 0), f3(f.classifier?.auc), f3(f.classifier?.logLoss), f3(f.classifier?.ece), f3(f.thresholds.enterProb), f3(f.thresholds.exitProb), f.validationExpectedValue === null ? 'n/a' : `${(f.validationExpectedValue * 100).toFixed(3)} %`]),
    ]),
    '',
    'Out-of-sample backtests per fold (fees 10 bps; Sharpe - rules: bootstrap 95 % interval over the fold\'s bars):',
    ...table([
      ['tf', 'fold', 'strategy', 'return', 'buy & hold', 'sharpe', 'max dd', 'trades', 'sharpe - rules [95 % CI]'],
      ...r.results.flatMap((f) =>
        f.strategies.map((s) => [f.timeframe, String(f.fold), s.strategy, pct(s.totalReturn), pct(f.buyAndHold), f2(s.sharpe), pct(s.maxDrawdown === 0 ? 0 : -s.maxDrawdown), String(s.trades), ci(s.sharpeVsRules)]),
      ),
    ]),
  ];
  for (const g of r.summary) {
    out.push(
      '',
      `${g.timeframe}, all ${g.folds} folds pooled (${g.bars} bars): mean AUC ${f3(g.classifier.meanAuc)}, log loss ${f3(g.classifier.meanLogLoss)}, ECE ${f3(g.classifier.meanEce)}; buy and hold compounded ${pct(g.buyAndHoldCompounded)}`,
      ...table([
        ['tf', 'strategy', 'folds traded', 'trades', 'compounded', 'sharpe', 'worst dd', 'sharpe - rules [95 % CI]', 'verdict'],
        ...g.strategies.map((s) => [
          g.timeframe,
          s.strategy,
          `${s.foldsWithTrades}/${s.folds}`,
          String(s.trades),
          pct(s.compoundedReturn),
          f2(s.sharpe),
          pct(s.worstDrawdown === 0 ? 0 : -s.worstDrawdown),
          ci(s.sharpeVsRules),
          s.sharpeVsRules === null ? 'baseline' : s.sharpeVsRules.low > 0 ? 'beats rules' : s.sharpeVsRules.high < 0 ? 'worse than rules' : 'no significant difference',
        ]),
      ]),
    );
  }
  return out;
}
