import type { AppConfig } from '../../infra/config';
import type { Logger } from '../../infra/logger';
import { timeframeToMs, type Candle } from '../../lib/candles';
import { FeeSchedule, SlippageModel } from '../../lib/exchange/fill-model';
import { createLogger } from '../../infra/logger';
import { createTradingExchange, type ClosedCandlesSink } from '../exchange';
import type { ReplayFile } from '../../infra/candle-files';
import { replayFromFiles } from '../../infra/candle-files';
import type { ExchangeAdapter } from '../../lib/exchange/types';
import { PaperExchange } from '../../lib/exchange/paper-exchange';
import type { PaperStateStore } from '../../lib/exchange/paper-state';
import { type ReplayMarketData } from '../../lib/exchange/replay-market-data';
import { spotMarket, StaticMarketCatalog } from '../../lib/exchange/markets';
import { DEFAULT_FEE_BPS, DEFAULT_SLIPPAGE_BPS } from '../../lib/backtest/simulate';

/**
 * Where one process's trading activities send orders and read candles.
 *
 * Replay: recorded candles, and the paper exchange on a simulated clock. Each activity call gets
 * an adapter frozen at the close of the candle it is processing (`asOf`), so symbols replayed at
 * different speeds never see each other's future, and a backtest over the same files (which
 * builds the same adapter in memory) fills the same orders at the same prices.
 */

/** Where orders go and candles come from, for one process. */
export interface Venue {
  mode: 'paper' | 'live' | 'replay';
  exchangeId: string;
  /**
   * The adapter for `symbol`; replay: on the given clock (the close of the candle being
   * processed), live/paper: the wall clock (clock null).
   */
  adapter(clock: (() => number) | null, symbol?: string): ExchangeAdapter;
  /** Replay: every recorded candle of a series. */
  replayCandles?(symbol: string, timeframe: string): Candle[];
}

/** A recorded series already in memory (read from the candle store). */
export interface ReplaySeries {
  symbol: string;
  timeframe: string;
  /** Where it comes from, for messages: `store:<exchange>`. */
  label: string;
  candles: Candle[];
}

export interface ReplayVenueOptions {
  /** Candle files, each read on first use. */
  files?: Array<string | ReplayFile>;
  /** Series in memory (the candle store). */
  series?: ReplaySeries[];
  store: PaperStateStore;
  /** Prefix of the paper accounts: one account per symbol (`<account>/<SYMBOL>`), as the backtester keeps them. */
  account: string;
  /** Split evenly between the symbols: each symbol's account starts with its sleeve, in its quote currency (as in the backtester). */
  initialCapital: number;
  /** Default: the backtester's (DEFAULT_FEE_BPS both sides). */
  fees?: FeeSchedule;
  /** Default: the backtester's (DEFAULT_SLIPPAGE_BPS). */
  slippage?: Partial<SlippageModel>;
  log?: Logger;
}

export interface ReplayVenue extends Venue {
  data: ReplayMarketData;
  series: Array<{ symbol: string; timeframe: string }>;
}

/**
 * Replays through the trading workflows with exactly the exchange the backtester builds
 * (lib/backtest/run.ts): one paper account per symbol holding its sleeve, spot market rules,
 * the same fees and slippage, on a clock the activity moves to the close of its candle.
 */
export function replayVenue(opts: ReplayVenueOptions): ReplayVenue {
  const data = replayFromFiles(opts.files ?? []);
  for (const s of opts.series ?? []) data.addSource({ symbol: s.symbol, timeframe: s.timeframe, label: s.label, load: () => s.candles });
  const series = data.listSeries();
  if (series.length === 0) throw new Error('a replay needs at least one candle series');
  const timeframes = new Set(series.map((s) => s.timeframe));
  if (timeframes.size > 1) throw new Error(`replay files mix timeframes (${[...timeframes].join(', ')}); replay one timeframe at a time`);
  const timeframe = series[0]?.timeframe ?? '1h';
  const fees = FeeSchedule.parse(opts.fees ?? { maker: DEFAULT_FEE_BPS / 10_000, taker: DEFAULT_FEE_BPS / 10_000 });
  const slippage = SlippageModel.parse({ bps: DEFAULT_SLIPPAGE_BPS, ...opts.slippage });
  const log = opts.log ?? createLogger({ level: 'silent' });
  const sleeveCapital = opts.initialCapital / Math.max(1, new Set(series.map((s) => s.symbol)).size);
  return {
    mode: 'replay',
    exchangeId: 'paper',
    data,
    series,
    adapter(clock: (() => number) | null, symbol?: string): ExchangeAdapter {
      if (!symbol) throw new Error('a replayed exchange is per symbol (one paper account each)');
      const now = clock ?? (() => Number.MAX_SAFE_INTEGER);
      const market = spotMarket(symbol);
      return new PaperExchange({
        account: `${opts.account}/${symbol}`,
        store: opts.store,
        marketData: data.at(now),
        markets: new StaticMarketCatalog([market]),
        timeframe,
        initialBalances: { [market.quote]: sleeveCapital },
        fees,
        slippage,
        now,
        log,
      });
    },
    replayCandles(symbol: string, tf: string): Candle[] {
      return data.recorded(symbol, tf) as Candle[];
    },
  };
}

/**
 * Paper (DRY_RUN) or live trading on the configured exchange; the wall clock. Every closed candle
 * read from the exchange goes to `candleSink` (the candle store).
 */
export function exchangeVenue(cfg: AppConfig, store: PaperStateStore, account: string, log: Logger, candleSink?: ClosedCandlesSink): Venue {
  const quote = cfg.symbols[0]?.split('/')[1] ?? 'USDT';
  let cached: ExchangeAdapter | undefined;
  return {
    mode: cfg.mode === 'live' ? 'live' : 'paper',
    // The adapter's own id: what the ledger records orders and positions under.
    exchangeId: cfg.mode === 'live' ? cfg.exchange.id : 'paper',
    adapter(): ExchangeAdapter {
      cached ??= createTradingExchange({
        exchange: {
          id: cfg.exchange.id,
          apiKey: cfg.exchange.apiKey,
          secret: cfg.exchange.secret,
          sandbox: cfg.exchange.sandbox,
          apiUrl: cfg.exchange.apiUrl,
          ccxtOptions: cfg.exchange.ccxtOptions,
        },
        dryRun: cfg.mode !== 'live',
        candleSink,
        paper: {
          account,
          store,
          timeframe: '1m',
          initialBalances: { [quote]: cfg.risk.initialCapital },
          exchangeId: 'paper',
          log,
        },
      });
      return cached;
    },
  };
}

export function timeframeMs(tf: string): number {
  return timeframeToMs(tf);
}
