import type { Candle } from '../lib/candles';
import { createFeatureStream } from '../lib/features';
import { DEFAULT_WARMUP_CANDLES } from '../lib/features/cache';
import { classifyRegime } from '../lib/regime';
import { rulesVerdict } from '../lib/strategy/builtins';
import { decide, initialSymbolState, type EngineConfig, type OrderIntent, type PortfolioView } from '../lib/engine';
import type { DecisionView } from '../lib/contracts/trading';
import { sampledMarketCandles } from './candles';

/**
 * A generated 1m market for running `trader up` on the wall clock (test/e2e/live-paper.test.ts):
 * a SyntheticMarket series (sampledMarketCandles) and the place in it where the `rules` strategy, started fresh, holds on two
 * candles and enters on the third. Served by the exchange stand-in re-timed so that the first of
 * those candles has just closed when the trader first asks (retimeAtFirstRequest), the entry
 * then falls on the second live candle close after start-up, whenever start-up ends.
 *
 * Found by running the real decision code (lib/engine decide, from a fresh state) on exactly the
 * feature vectors the live trader computes: its feature cache streams the last
 * DEFAULT_WARMUP_CANDLES candles up to the first candle it decides on, then one candle at a time.
 */

const M = 60_000;
// A fixed origin: the same series on every run and machine.
const ORIGIN = Date.UTC(2025, 0, 6);

export interface LiveEntrySeries {
  /** What the stand-in serves: `history` candles before `first`, then `after` more after the entry. */
  candles: Candle[];
  /** Index of the candle decided first (the newest closed one at the first request). */
  first: number;
  /** Index of the candle the strategy enters on: first + 2. */
  entry: number;
  /** The decisions on first, first + 1 and entry, from a fresh state. */
  decisions: DecisionView[];
  /** The entry order the engine sends at the entry candle's close. */
  entryIntent: OrderIntent;
}

export function liveEntrySeries(opts: { engine: EngineConfig; portfolio: PortfolioView; workflowId: string; history: number; after: number; variant?: number }): LiveEntrySeries {
  const window = DEFAULT_WARMUP_CANDLES;
  const lead = Math.max(opts.history, window);
  const source = sampledMarketCandles(opts.engine.symbol, M, ORIGIN, 30_000, opts.variant ?? 0);
  // A cheap first pass over one stream (its vectors differ from the live ones by ~1e-9): candles
  // where the rules want in after two that do not.
  const stream = createFeatureStream();
  const wantsIn = source.map((c) => {
    const v = stream.push(c);
    return v !== null && rulesVerdict(Array.from(v), classifyRegime(v)).enter;
  });
  for (let j = lead + 2; j + opts.after < source.length; j++) {
    if (!wantsIn[j] || wantsIn[j - 1] || wantsIn[j - 2]) continue;
    const exact = decideFresh(source.slice(j - 2 - (window - 1), j + 1), opts);
    if (!exact) continue;
    const first = j - 2;
    const from = first - opts.history;
    return { candles: source.slice(from, j + opts.after + 1), first: first - from, entry: j - from, ...exact };
  }
  throw new Error(`no fresh entry after two holds in ${source.length} generated candles (variant ${opts.variant ?? 0})`);
}

/** The live trader's decisions on the last three candles of `candles` (its feature window): hold, hold, enter; else null. */
function decideFresh(candles: Candle[], opts: { engine: EngineConfig; portfolio: PortfolioView; workflowId: string }): Omit<LiveEntrySeries, 'candles' | 'first' | 'entry'> | null {
  const stream = createFeatureStream();
  let state = initialSymbolState(opts.engine);
  const decisions: DecisionView[] = [];
  let entryIntent: OrderIntent | undefined;
  candles.forEach((candle, i) => {
    const v = stream.push(candle);
    if (i < candles.length - 3) return;
    if (!v) throw new Error('the live window is shorter than the feature warm-up');
    const d = decide(state, { candle, features: Array.from(v), regime: classifyRegime(v), tradable: true, problems: [], portfolio: opts.portfolio }, opts.engine, { workflowId: opts.workflowId });
    state = d.state;
    decisions.push(d.decision);
    const entry = d.intents.find((x) => x.tag === 'entry');
    if (entry && i === candles.length - 1) entryIntent = entry;
    else if (entry) entryIntent = undefined;
  });
  const holds = decisions.slice(0, 2).every((d) => d.action !== 'enter');
  return holds && entryIntent ? { decisions, entryIntent } : null;
}
