import { z } from 'zod';

/**
 * Risk settings for one account. The first four keep the names of AppConfig.risk (env
 * MAX_POSITION_SIZE, STOP_LOSS_PCT, TAKE_PROFIT_PCT, MAX_DRAWDOWN), so `RiskConfig.parse(cfg.risk)`
 * works; the rest have defaults until the env loader grows variables for them.
 * Every fraction is a fraction (0.05 = 5 %), every duration is counted in bars of the
 * trading timeframe, so the same config reads the same in a live run and in a backtest.
 */

/** Long-only spot today; the maths below is written for both sides so short can be enabled. */
export const Side = z.enum(['long', 'short']);
export type Side = z.infer<typeof Side>;

export const StopMode = z.enum(['percent', 'atr']);
export type StopMode = z.infer<typeof StopMode>;

/** `maxStopOuts` stop-outs within the last `windowBars` bars pause new entries on the symbol for `pauseBars` bars. */
export const StoplossGuardConfig = z.object({
  maxStopOuts: z.number().int().min(1),
  windowBars: z.number().int().min(1),
  pauseBars: z.number().int().min(1),
});
export type StoplossGuardConfig = z.infer<typeof StoplossGuardConfig>;

const positiveFraction = z.number().gt(0).max(1);

export const RiskConfig = z
  .object({
    /** Largest position, as a fraction of equity. Nothing in sizing can exceed it. */
    maxPositionSize: positiveFraction.default(0.05),
    stopLossPct: z.number().gt(0).lt(1).default(0.02),
    takeProfitPct: z.number().gt(0).default(0.04),
    /** Drawdown from the equity peak at which the kill switch halts every symbol. */
    maxDrawdown: positiveFraction.default(0.15),

    /** 'atr': stop and target at a multiple of the ATR at entry; falls back to percent while the ATR is unknown. */
    stopMode: StopMode.default('percent'),
    atrStopMult: z.number().gt(0).default(2),
    atrTargetMult: z.number().gt(0).default(4),
    /** Trailing stop as a fraction of the best price since entry, or as a multiple of the current ATR; off when both are unset. */
    trailingStopPct: z.number().gt(0).lt(1).optional(),
    trailingAtrMult: z.number().gt(0).optional(),
    /** The trailing stop starts only once the best price is this far in profit (0 = from entry). */
    trailingActivationPct: z.number().min(0).default(0),

    maxConcurrentPositions: z.number().int().min(1).default(3),
    /** Sum of open position notionals, as a fraction of equity. At most 1: spot has no leverage. */
    maxTotalExposure: positiveFraction.default(0.5),
    /** Loss since the start of the UTC day, as a fraction of that day's starting equity; pauses entries until the next day. */
    dailyLossLimit: positiveFraction.default(0.05),
    /** After a stop-out, this many entry decisions (bars, the stop-out bar included) are skipped on the symbol. */
    cooldownBarsAfterStopOut: z.number().int().min(0).default(2),
    /** null disables the guard. */
    stoplossGuard: StoplossGuardConfig.nullable().default({ maxStopOuts: 3, windowBars: 24, pauseBars: 12 }),

    /**
     * Per-bar volatility (ATR / price, or the realized volatility the caller passes) above which
     * positions are scaled down in proportion. Unset = no volatility scaling: a sensible value
     * depends on the timeframe (1h BTC runs near 0.005-0.01), so there is no universal default.
     */
    targetVolatility: z.number().gt(0).optional(),
    /**
     * Size multiplier per regime label (lib/regime's REGIMES), each in [0, 1]; a label not listed
     * keeps full size. Volatile markets and downtrends get half size by default: stops sized on
     * ordinary volatility are too tight there, and a long-only book is fighting the trend.
     */
    regimeMultipliers: z.record(z.string(), z.number().min(0).max(1)).default({ bull: 1, sideways: 0.75, volatile: 0.5, bear: 0.5 }),
  })
  .refine((c) => c.trailingStopPct === undefined || c.trailingAtrMult === undefined, {
    message: 'set trailingStopPct or trailingAtrMult, not both',
    path: ['trailingAtrMult'],
  });
export type RiskConfig = z.infer<typeof RiskConfig>;
export type RiskConfigInput = z.input<typeof RiskConfig>;

/**
 * The risk settings the environment names (MAX_POSITION_SIZE, STOP_LOSS_PCT, TAKE_PROFIT_PCT,
 * MAX_DRAWDOWN), the rest at their defaults: one mapping for `trader up`, `trader backtest` and
 * training, so a replay and a backtest of the same config cannot size differently.
 */
export function riskInputFromEnv(r: Pick<RiskConfig, 'maxPositionSize' | 'stopLossPct' | 'takeProfitPct' | 'maxDrawdown'>): RiskConfigInput {
  return { maxPositionSize: r.maxPositionSize, stopLossPct: r.stopLossPct, takeProfitPct: r.takeProfitPct, maxDrawdown: r.maxDrawdown };
}
