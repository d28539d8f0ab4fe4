import type { Logger } from '../../infra/logger';
import { decAdd, toDecimalString } from '../../lib/decimal';
import type { EquitySnapshotRecord } from '../../lib/contracts/trading';
import type { PortfolioSnapshot, TradingActivities } from '../../lib/contracts/activities';
import { enabledMetrics, type TradingDeps } from './deps';

/** The account's value as the ledger shows it, shared by the candle read, the orders and the portfolio's checks. */
export interface AccountValuation {
  /** The current valuation; calls that arrive while one is computing share its result. */
  shared(): Promise<PortfolioSnapshot>;
  /** After a trade closed: the account valued afresh for the equity metric (a no-op without metrics). */
  measureAfterTrade(log: Logger): Promise<void>;
  /** The portfolio workflow's check: the shared valuation, measured against its durable peak. */
  portfolioSnapshot(args: { account: string; symbols: string[]; peakEquity?: number | null }): Promise<PortfolioSnapshot>;
}

export function createAccountValuation(deps: TradingDeps): AccountValuation {
  const metrics = enabledMetrics(deps);

  /**
   * The account from the ledger: cash (the starting capital plus what every fill paid or
   * received, fees included, one exact sum) plus the open positions marked at the venue's last 1m
   * close. Every symbol asks at its candle close, usually all at once: calls that arrive while one
   * is computing share its result instead of repeating the reads.
   */
  let inFlight: Promise<PortfolioSnapshot> | null = null;
  async function computeSnapshot(): Promise<PortfolioSnapshot> {
    const now = new Date();
    const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
    const exchange = deps.venue.exchangeId;
    const [pnl, positions, flow] = await Promise.all([deps.ledger.realizedPnl(dayStart), deps.ledger.openPositions(), deps.ledger.cashFlow(exchange)]);
    const open = positions.filter((p) => p.exchange === exchange);
    const marks = await Promise.all(
      open.map(async (p) => {
        const entry = Number(p.avgEntryPrice ?? 0);
        if (deps.venue.mode === 'replay') return entry;
        try {
          const [last] = await deps.venue.adapter(null, p.symbol).fetchCandles(p.symbol, '1m', undefined, 1);
          return last ? last.close : entry;
        } catch {
          // Marking at entry is the safe fallback: the drawdown check then sees realized losses only.
          return entry;
        }
      }),
    );
    const exposure = open.reduce((sum, p, i) => sum + marks[i] * Number(p.qty), 0);
    const cash = Number(decAdd(toDecimalString(deps.initialCapital), flow));
    const dailyPnl = Number(pnl.since);
    const equity = cash + exposure;
    return { equity, cash, openPositions: open.length, totalExposure: exposure, dayStartEquity: equity - dailyPnl, dailyPnl };
  }
  let inFlightSince = 0;
  function sharedSnapshot(): Promise<PortfolioSnapshot> {
    if (!inFlight) {
      inFlightSince = Date.now();
      inFlight = computeSnapshot().finally(() => {
        inFlight = null;
      });
    }
    return inFlight;
  }

  /**
   * The account's peak equity as this process last saw it, for the drawdown metric: the portfolio
   * workflow's own (durable) peak whenever it asks, higher equities seen in between.
   */
  let peakEquity = deps.initialCapital;
  function measureEquity(snap: PortfolioSnapshot, time: number, workflowPeak?: number | null): void {
    if (!metrics) return;
    peakEquity = workflowPeak !== undefined && workflowPeak !== null ? Math.max(workflowPeak, snap.equity) : Math.max(peakEquity, snap.equity);
    metrics.equity({ ...snap, peakEquity }, time);
  }

  /** After a trade closed: the account valued afresh (not a computation that began before the close committed). */
  async function measureEquityAfterTrade(log: Logger): Promise<void> {
    if (!metrics) return;
    const at = Date.now();
    try {
      measureEquity(await computeSnapshot(), at);
    } catch (err) {
      log.warn({ err }, 'could not value the account for the equity metric');
    }
  }

  async function portfolioSnapshot(args: { account: string; symbols: string[]; peakEquity?: number | null }): Promise<PortfolioSnapshot> {
    const pending = sharedSnapshot();
    // Stamped when the (possibly shared) valuation began reading the ledger, so that a point
    // stamped later than a trade's commit always includes that trade.
    const at = inFlightSince;
    const snap = await pending;
    measureEquity(snap, at, args.peakEquity);
    return snap;
  }

  return { shared: sharedSnapshot, measureAfterTrade: measureEquityAfterTrade, portfolioSnapshot };
}

/** The portfolio workflow's equity checks: the account's value, and its durable record in the ledger. */
export function createEquityActivities(deps: TradingDeps, valuation: AccountValuation): Pick<TradingActivities, 'portfolioSnapshot' | 'recordEquitySnapshot'> {
  return {
    portfolioSnapshot: valuation.portfolioSnapshot,

    /** Writes one equity check to the ledger; idempotent per account and check time. */
    async recordEquitySnapshot(r: EquitySnapshotRecord): Promise<void> {
      const amount = (x: number) => toDecimalString(Math.max(0, x));
      await deps.ledger.snapshotEquity({
        account: r.account,
        ts: new Date(r.ts),
        equity: toDecimalString(r.equity),
        // Spot: cash and notionals are never below zero; a float sum may land a hair under it.
        cash: toDecimalString(Math.abs(r.cash) < 1e-9 ? 0 : r.cash),
        exposure: amount(r.exposure),
        peakEquity: amount(r.peakEquity),
        drawdown: toDecimalString(Math.min(1, Math.max(0, r.drawdown))),
      });
    },
  };
}
