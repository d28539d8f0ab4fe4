import { loadFile } from '../../backtester/run';
import { UsageError } from '../../infra/errors';
import { strategyHost } from '../../infra/strategies';
import { computeFeatureMatrix, FEATURE_SCHEMA, type FeatureMatrix } from '../../lib/features';
import {
  lookaheadAnalysis,
  recursiveAnalysis,
  RECURSIVE_TOLERANCE,
  type FindingSummary,
  type LookaheadReport,
  type RecursiveReport,
} from '../../lib/strategy/analysis';

/**
 * `trader strategy check NAME --data FILE... [--params F] [--json]`: the look-ahead and recursion
 * analyses of lib/strategy/analysis.ts over recorded candle files, as a report.
 *
 * - Look-ahead: at the candles where the strategy enters, exits or changes its mind (and a sample
 *   spread evenly), its indicators and answer are computed again without the later candles; every
 *   value that changes is named with its candle. Any: exit code 1.
 * - Recursion: the warm-up each indicator column needs to match its full-history value (within
 *   `tolerance`, 1e-6 relative by default), against the strategy's declared `warmup`, and how many
 *   answers differ live (indicators over the declared warm-up) from a backtest. Reported, not an
 *   exit code: a too-short warm-up makes live differ from the backtest, it does not make the
 *   backtest lie.
 *
 * `--json` prints { strategy, files: [{ file, exchange, symbol, timeframe, candles, lookahead,
 * recursive }], lookahead, recursionOk, exitCode } (the reports as lib/strategy/analysis.ts types
 * them; NaN and infinities as the strings "NaN", "Infinity", "-Infinity").
 */

export interface StrategyCheckOptions {
  /** A built-in's name, a strategy name found in strategies/ or examples/strategies/, or a path to a .ts file. */
  ref: string;
  params?: Record<string, unknown>;
  /** Candle files (backtester/run.ts loadFile). */
  files: string[];
  out: (line: string) => void;
  json?: boolean;
  /** Relative tolerance of the recursion analysis (default 1e-6); the look-ahead's stays 1e-9. */
  tolerance?: number;
  /** Type-check a strategy file at load (default true; the compiler costs seconds). */
  typeCheck?: boolean;
}

export interface StrategyCheckFile {
  file: string;
  exchange: string;
  symbol: string;
  timeframe: string;
  candles: number;
  lookahead: LookaheadReport;
  recursive: RecursiveReport;
}

/** Runs both analyses over every file and prints them; the exit code: 1 when look-ahead is found (or the indicators cannot be computed), else 0. Throws for bad input. */
export async function runStrategyCheck(opts: StrategyCheckOptions): Promise<number> {
  if (opts.files.length === 0) throw new UsageError('strategy check needs candle files: --data FILE...');
  const tolerance = opts.tolerance ?? RECURSIVE_TOLERANCE;
  if (!(Number.isFinite(tolerance) && tolerance > 0 && tolerance < 1)) throw new UsageError(`--tolerance must be a number between 0 and 1 (got ${opts.tolerance})`);
  const host = strategyHost(opts.ref, opts.params ?? {}, opts.typeCheck === undefined ? {} : { typeCheck: opts.typeCheck });
  const s = host.loaded.strategy;
  const series = opts.files.map((f) => loadFile(f));
  const minCandles = FEATURE_SCHEMA.warmup + 2;
  for (const x of series) {
    if (s.timeframes && !s.timeframes.includes(x.timeframe)) throw new UsageError(`${x.source}: ${s.name} is made for ${s.timeframes.join(', ')}, not ${x.timeframe}`);
    if (x.candles.length < minCandles) throw new UsageError(`${x.source}: ${x.candles.length} candles; the check needs at least ${minCandles} (the feature kernel's warm-up of ${FEATURE_SCHEMA.warmup}, a decision candle and one after it), and a few thousand to mean much`);
  }

  const results: StrategyCheckFile[] = [];
  for (const x of series) {
    let features: FeatureMatrix;
    try {
      features = computeFeatureMatrix(x.candles);
    } catch (err) {
      throw new UsageError(`${x.source}: ${(err as Error).message}`);
    }
    const input = { host, symbol: x.symbol, timeframe: x.timeframe, timeframeMs: x.timeframeMs, candles: x.candles, features };
    results.push({
      file: x.source,
      exchange: x.exchange,
      symbol: x.symbol,
      timeframe: x.timeframe,
      candles: x.candles.length,
      lookahead: lookaheadAnalysis(input),
      recursive: recursiveAnalysis({ ...input, tolerance }),
    });
  }
  const lookahead = results.some((r) => r.lookahead.lookahead);
  const unchecked = results.some((r) => r.lookahead.error !== undefined);
  const exitCode = lookahead || unchecked ? 1 : 0;
  const id = host.loaded.identity;

  if (opts.json) {
    const strategy = { name: id.name, version: id.version, source: id.source, params: host.paramsHash, origin: host.loaded.origin, values: host.params };
    opts.out(JSON.stringify({ strategy, files: results, lookahead, recursionOk: results.every((r) => r.recursive.ok), exitCode }, jsonNumbers, 2));
    return exitCode;
  }

  const out = opts.out;
  out(`Strategy ${id.name}@${id.version} (${host.loaded.origin}, source ${id.source}), parameters ${host.paramsHash} ${JSON.stringify(host.params)}, declared warm-up ${s.warmup}`);
  for (const r of results) {
    out('');
    for (const line of fileLines(r)) out(line);
  }
  out('');
  const bad = results.filter((r) => r.lookahead.lookahead).length;
  const shortWarmup = results.filter((r) => !r.recursive.ok).length;
  out(
    [
      bad > 0 ? `LOOK-AHEAD in ${bad} of ${results.length} file(s): a backtest of ${id.name} uses candles that do not exist yet when it decides` : unchecked ? `${id.name} could not be checked (its indicators failed)` : `No look-ahead found in ${results.length} file(s)`,
      shortWarmup > 0 ? `the declared warm-up is too short for some indicators in ${shortWarmup} file(s) (live answers will differ from a backtest's)` : 'warm-up sufficient',
      results.some((r) => r.lookahead.nondeterministic) ? 'NOT DETERMINISTIC: the same inputs gave different answers' : '',
    ]
      .filter(Boolean)
      .join('; ') + '.',
  );
  return exitCode;
}

/** JSON.stringify replacer: NaN and infinities as strings (JSON has no such numbers). */
function jsonNumbers(_key: string, v: unknown): unknown {
  return typeof v === 'number' && !Number.isFinite(v) ? String(v) : v;
}

const time = (ms: number): string => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');

function value(v: unknown): string {
  if (v === undefined) return '(none)';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v);
    return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(8)));
  }
  if (typeof v === 'string') return v.length > 60 ? `${v.slice(0, 57)}...` : v;
  return JSON.stringify(v);
}

function diff(d: number | null): string {
  if (d === null) return '-';
  if (d === Infinity) return 'no value';
  if (d === 0) return '0';
  return d.toExponential(1);
}

function table(rows: string[][], indent = '  '): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => indent + r.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd());
}

const fieldLabel = (f: { field: string; position?: string }) => (f.position ? `${f.field} (${f.position})` : f.field);

function fileLines(r: StrategyCheckFile): string[] {
  const la = r.lookahead;
  const rec = r.recursive;
  const lines: string[] = [];
  lines.push(`== ${r.exchange} ${r.symbol} ${r.timeframe}: ${r.file}, ${r.candles} candles`);
  lines.push('');
  lines.push('Look-ahead: indicators and answers recomputed with the later candles removed');
  if (la.error) {
    lines.push(`  NOT CHECKED: ${la.error}`);
  } else {
    lines.push(
      `  ${la.checked} candles checked` +
        (la.checkedSpan ? ` (${time(la.checkedSpan.from)} .. ${time(la.checkedSpan.to)} UTC)` : '') +
        `: ${la.checkedSignalCandles} of the ${la.signalCandles} where ${la.strategy.name} enters, exits or changes its answer, the rest spread evenly; ` +
        `first decision at candle #${la.firstDecision} (the feature kernel's warm-up); tolerance ${la.tolerance.toExponential(0)} relative`,
    );
    if (la.indicators.length) lines.push(`  indicators: ${la.indicators.join(', ')}; feature vectors recomputed over the prefix at ${la.featureSpotChecks} of the candles`);
    for (const n of la.notes) lines.push(`  note: ${n}`);
    const lookSummary = la.summary.filter((s) => s.kind !== 'nondeterministic');
    if (lookSummary.length === 0) {
      lines.push(la.indicators.length ? '  no look-ahead: every indicator row and answer is the same without the later candles' : '  no look-ahead possible through the host (see the note)');
    } else {
      lines.push(`  LOOK-AHEAD: ${lookSummary.length} field(s) change when the later candles are removed`);
      lines.push(...summaryTable(lookSummary));
      const shown = la.findings.slice(0, 12);
      const total = la.findings.length + la.findingsLeftOut;
      lines.push(`  First findings (${shown.length} of ${total}):`);
      lines.push(...table([['candle', 'open time (UTC)', 'kind', 'field', 'whole series', 'without later candles'], ...shown.map((f) => [`#${f.index}`, time(f.time), f.kind, fieldLabel(f), value(f.full), value(f.prefix)])], '    '));
    }
    const nd = la.summary.filter((s) => s.kind === 'nondeterministic');
    if (nd.length > 0) {
      lines.push(`  NOT DETERMINISTIC: the same context answered twice gave different answers (state kept between calls, a clock or random numbers):`);
      lines.push(...summaryTable(nd));
    } else if (la.checked > 0) {
      lines.push('  deterministic: the same context answered twice gave the same answer at every candle checked');
    }
  }

  lines.push('');
  lines.push(`Recursion: the warm-up each indicator needs (live computes them over the last ${rec.liveWindow} candles; a backtest over the whole series)`);
  if (rec.error) {
    lines.push(`  NOT CHECKED: ${rec.error}`);
  } else if (rec.indicators.length === 0) {
    for (const n of rec.notes) lines.push(`  note: ${n}`);
  } else {
    lines.push(`  at ${rec.ends.length} end candle(s) (${rec.ends.map((e) => `#${e.index}`).join(', ')}), against the value over all the candles before each; tolerance ${rec.tolerance.toExponential(0)} relative`);
    const ws = rec.warmups;
    lines.push(
      ...table([
        ['indicator', 'needs', 'declared', 'verdict', ...ws.map((w) => `@${w}`)],
        ...rec.indicators.map((i) => [
          i.name,
          i.needed === null ? `> ${Math.max(...i.diffs.filter((d) => d.maxDiff !== null).map((d) => d.warmup), 0)}` : String(i.needed),
          String(i.declared),
          i.verdict === 'ok' ? 'ok' : i.verdict === 'too-short' ? 'TOO SHORT' : 'UNSETTLED',
          ...ws.map((w) => diff(i.diffs.find((d) => d.warmup === w)?.maxDiff ?? null)),
        ]),
      ]),
    );
    lines.push('  (@N: largest relative difference from the full-history value with N candles of warm-up; "no value": the indicator gives NaN there)');
    for (const n of rec.notes) lines.push(`  note: ${n}`);
    const a = rec.answers;
    lines.push(`  answers at ${a.checked} candles, indicators over the declared warm-up (live) vs over the whole history (backtest): ${a.differing} differ`);
    if (a.findings.length > 0) {
      lines.push(...table([['candle', 'open time (UTC)', 'field', 'live', 'backtest'], ...a.findings.slice(0, 8).map((f) => [`#${f.index}`, time(f.time), fieldLabel(f), value(f.live), value(f.backtest)])], '    '));
    }
  }
  return lines;
}

function summaryTable(rows: FindingSummary[]): string[] {
  return table([['kind', 'field', 'candles', 'first at (candle, open time UTC)'], ...rows.map((s) => [s.kind, fieldLabel(s), String(s.count), `#${s.firstIndex} ${time(s.firstTime)}`])], '    ');
}
