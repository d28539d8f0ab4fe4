/**
 * The files `trader strategy new NAME` writes (client/commands/strategy-new.ts): a strategy to
 * edit, and its smoke test. Kept apart from the command so the text reads as the file it becomes.
 *
 * The strategy imports the interface as `durable-trader/strategy`: the loader (infra/strategies.ts)
 * maps that name to lib/strategy at run time, and typeCheckStrategy maps it for the compiler, so
 * the file needs nothing installed next to it.
 */

/** A strategy file named `name` (a checked strategy name). */
export function strategyTemplate(name: string): string {
  return `import { alignEnd, defineStrategy, ti, z } from 'durable-trader/strategy';

/**
 * \`${name}\`: a moving-average cross with a momentum guard and a regime filter. A starting point:
 * change what it trades, keep the shape. (Describe here, in plain words, what it trades and why.)
 *
 * - enter: the fast EMA of the close is above the slow one (an uptrend has started), RSI(14) is
 *   below \`rsiMax\` (not buying what is already overbought) and the market regime is not bear;
 * - exit: the fast EMA falls back under the slow one;
 * - the engine's risk rules always apply on top: position size limits, the kill switch,
 *   protections, exposure, and the protective stop and target resting on the exchange.
 *
 * Try it:
 *   npx trader strategy check ${name} --data test/fixtures/ohlcv/binanceusdm_BTC-USDT_1h.csv
 *   npx trader backtest --strategy ${name} --data test/fixtures/ohlcv/binanceusdm_BTC-USDT_1h.csv --report out.html
 *   npx mocha strategies/${name}.test.ts
 * docs/strategies.md is the guide and the reference.
 *
 * The rules every strategy keeps:
 * - only what the context gives: the candle that just closed and the ones before it, never a later
 *   one (\`trader strategy check\` recomputes the indicators with the later candles removed);
 * - a warm-up long enough for its indicators to settle (\`strategy check\` compares warm-ups);
 * - a pure function: no clock, no randomness, no I/O, no state kept between calls (a candle may be
 *   decided again after a crash, and a backtest must make the trades the live workflow makes).
 */

/**
 * EMAs are recursive: every value still carries a little of the first candles'. An EMA of
 * \`period\` starts from the average of its first \`period\` candles, and that start weighs
 * (1 - 2/(period+1))^n after n more candles: below one millionth after about 7 times the period.
 * The warm-up below covers the longest EMA the parameters allow (MAX_SLOW).
 */
const MAX_SLOW = 100;
const emaWarmup = (period: number): number => period + Math.ceil(Math.log(1e-6) / Math.log(1 - 2 / (period + 1)));

/** Parameters: every field has a default, so \`{}\` is a valid set (--params FILE.json overrides them). */
const Params = z.object({
  fast: z.number().int().min(2).max(MAX_SLOW).default(12),
  slow: z.number().int().min(3).max(MAX_SLOW).default(48),
  rsiMax: z.number().min(0).max(100).default(70),
  /** Protective stop, as a fraction of the entry price (0.03 = 3 % below). */
  stopPct: z.number().gt(0).lt(1).default(0.03),
});
type Params = z.infer<typeof Params>;


export default defineStrategy<Params>({
  // The name must be the file's name: \`--strategy ${name}\` finds strategies/${name}.ts.
  name: '${name}',
  // Your own version: recorded with every decision, order and trade. Bump it when the logic changes.
  version: '0.1.0',
  description: 'EMA cross with an RSI guard and a regime filter (template).',
  // Optional: the timeframes it is made for; another one is refused at start.
  // timeframes: ['1h', '4h'],
  warmup: emaWarmup(MAX_SLOW), // 791 candles
  params: Params,
  // Optional: ranges for a parameter search over the parameters.
  search: {
    fast: { type: 'int', low: 5, high: 30 },
    slow: { type: 'int', low: 30, high: 100 },
    rsiMax: { type: 'float', low: 60, high: 85 },
  },
  // Optional: model: ['ensemble'] gives decide() the model's signal as ctx.model.

  /**
   * Its own indicators, computed over a series of closed candles at once: one column per name,
   * one value per candle, oldest first (NaN where not computable yet). Row i may use only candles
   * 0..i. A backtest computes them once over the whole series; live, over the last \`warmup\` candles.
   */
  indicators(candles, p) {
    const closes = candles.map((c) => c.close);
    return {
      fast: alignEnd(ti.EMA.calculate({ period: p.fast, values: closes }), candles.length),
      slow: alignEnd(ti.EMA.calculate({ period: p.slow, values: closes }), candles.length),
    };
  },

  /**
   * The answer on the candle that just closed. ctx has: candle, candles (oldest first, the decision
   * candle last), indicator(name) (this candle's row of indicators()), feature(name) (the engine's
   * feature kernel: rsi_14, adx_14, atr_14, ema_gap_50, ...), regime (label: bull | bear | volatile |
   * sideways), model (when \`model\` is declared), position (null when flat), params.
   */
  decide({ indicator, feature, regime, position, params: p }) {
    const fast = indicator('fast');
    const slow = indicator('slow');
    const rsi = feature('rsi_14');
    // NaN (not enough candles yet) is "no signal": every comparison with NaN is false anyway.
    if (!Number.isFinite(fast) || !Number.isFinite(slow)) return { enter: false, exit: false, reason: 'indicators not ready' };
    if (position) {
      const exit = fast < slow;
      return { exit, reason: exit ? 'fast EMA crossed under the slow one' : \`holding for \${position.ageCandles} candles\` };
    }
    const enter = fast > slow && rsi < p.rsiMax && regime.label !== 'bear';
    return {
      enter,
      reason: enter ? 'uptrend, not overbought' : fast <= slow ? 'no uptrend' : rsi >= p.rsiMax ? \`RSI \${rsi.toFixed(1)} overbought\` : \`regime \${regime.label}\`,
      // Optional hooks, each bounded by the engine's risk limits:
      tag: 'ema-cross', // travels to the trade (trader trades, the report); at most 40 printable ASCII characters
      stop: { pct: p.stopPct }, // or { atr: 2 }: the protective stop for this entry
      // target: { pct: 0.06 } | { atr: 4 } | null,    // take-profit; null: none
      // trailing: { atr: 3, activateAtPct: 0.01 },     // a trailing stop for this position
      // size: 0.5,                                     // share of the maximum position size, (0, 1]
      // confidence: 0.8,                               // in [0, 1]: scales the size
      // score: 0.3,                                    // a number the UI shows; not used to trade
    };
  },
});
`;
}

/**
 * The smoke test beside a strategy file: a backtest through the CLI over the project's recorded
 * BTC/USDT 1h candles, checking that it ran (not which trades it made).
 */
export function strategyTestTemplate(name: string, projectRoot: string): string {
  return `/**
 * \`${name}\`'s smoke test: a backtest of strategies/${name}.ts over the project's recorded BTC/USDT
 * 1h candles (all of 2020), through the \`trader\` CLI exactly as \`trader backtest --strategy\` runs
 * it. It checks that the strategy loads, type-checks and runs to the end, not which trades it
 * makes: change the strategy freely, and add assertions of your own below (a trade count, a
 * minimum profit factor, ...).
 *
 * Run it from the project: npx mocha strategies/${name}.test.ts
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The durable-trader project this file was made for (\`trader strategy new\` wrote its path). */
const PROJECT = ${JSON.stringify(projectRoot)};
const STRATEGY = path.join(__dirname, '${name}.ts');
const DATA = path.join(PROJECT, 'test', 'fixtures', 'ohlcv', 'binanceusdm_BTC-USDT_1h.csv');

interface BacktestJson {
  config: Record<string, unknown>;
  trades: Array<Record<string, unknown>>;
}

describe('strategy ${name}: a backtest over the fixture', function () {
  // A year of hourly candles through the engine's full candle step, after loading and
  // type-checking the strategy: tens of seconds.
  this.timeout(300_000);
  let dir: string;
  let run: ReturnType<typeof spawnSync>;
  let result: BacktestJson;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strategy-${name}-'));
    const out = path.join(dir, 'backtest.json');
    run = spawnSync(process.execPath, [path.join(PROJECT, 'bin', 'trader.js'), 'backtest', '--strategy', STRATEGY, '--data', DATA, '--json', out], { encoding: 'utf8' });
    assert.equal(run.status, 0, \`trader backtest failed (exit \${run.status}):\\n\${String(run.stderr)}\${String(run.stdout)}\`);
    result = JSON.parse(fs.readFileSync(out, 'utf8')) as BacktestJson;
  });

  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs to the end and writes the result', () => {
    assert.ok(Array.isArray(result.trades), 'the result has a trades array');
    assert.ok(result.config && typeof result.config === 'object', 'the result has its config');
  });

  it('is a backtest of this strategy', () => {
    assert.ok(JSON.stringify(result.config).includes('${name}'), \`the config names ${name}: \${JSON.stringify(result.config)}\`);
  });

  it('every trade made is a whole one (entry before exit)', () => {
    for (const t of result.trades) {
      if (typeof t.entryTime === 'number' && typeof t.exitTime === 'number') assert.ok(t.entryTime <= t.exitTime, JSON.stringify(t));
    }
  });
});
`;
}
