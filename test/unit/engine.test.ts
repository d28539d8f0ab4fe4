import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { Candle } from '../../lib/candles';
import { FEATURE_SCHEMA, featureIndex } from '../../lib/features';
import { REGIMES, type Regime, type RegimeLabel } from '../../lib/regime';
import type { RiskConfigInput } from '../../lib/risk';
import { ClientOrderId } from '../../lib/exchange/types';
import {
  applyFill,
  applyOrderStatus,
  applyRejection,
  clientOrderId,
  clientOrderIdPrefix,
  decide,
  emergencyIntents,
  engineConfig,
  initialSymbolState,
  markAccount,
  parseClientOrderId,
  runCandleStep,
  setStatus,
  type DecisionInput,
  type EngineConfig,
  type EngineFill,
  type ExecutionReport,
  type ModelSignal,
  type OrderIntent,
  type PortfolioView,
  type BuiltinStrategyName,
  type SymbolState,
} from '../../lib/engine';
import { modelThresholds, rulesVerdict as rulesSignal } from '../../lib/strategy/builtins';

const ctx = { workflowId: 'trader/binance/BTC/USDT' };
const HOUR = 3_600_000;
const T0 = Date.UTC(2024, 0, 1);

function cfgOf(strategy: BuiltinStrategyName = 'rules', risk: RiskConfigInput = {}): EngineConfig {
  return engineConfig({ symbol: 'BTC/USDT', strategy, risk, timeframeMs: HOUR, sleeveCapital: 10_000, feeRate: 0.001 });
}

/** A feature vector where the rules see an uptrend with momentum (or the overrides say otherwise). */
function bullish(over: Record<string, number> = {}): number[] {
  const v = new Array<number>(FEATURE_SCHEMA.width).fill(0);
  const set = (name: string, x: number) => (v[featureIndex(name)] = x);
  set('ema_gap_20', 0.01);
  set('ema_gap_50', 0.02);
  set('ema_gap_100', 0.03);
  set('ema_slope_50_10', 0.001);
  set('adx_14', 28);
  set('di_plus_14', 30);
  set('di_minus_14', 12);
  set('rsi_14', 60);
  set('macd_hist_12_26_9', 0.001);
  set('atr_14', 200);
  set('atr_pct_14', 0.01);
  set('rvol_24', 0.008);
  set('rvol_pctile_24_480', 0.4);
  for (const [k, x] of Object.entries(over)) set(k, x);
  return v;
}
const bearishTurn = () => bullish({ macd_hist_12_26_9: -0.001, ema_gap_20: -0.005, rsi_14: 45 });

const regime = (label: RegimeLabel, confidence = 0.8): Regime => ({ label, confidence, code: REGIMES.indexOf(label) });

function candle(i: number, close: number, o: Partial<Candle> = {}): Candle {
  return { timestamp: T0 + i * HOUR, open: close, high: close * 1.002, low: close * 0.998, close, volume: 10, ...o };
}

function input(i: number, close: number, over: Partial<DecisionInput> = {}): DecisionInput {
  return { candle: candle(i, close), features: bullish(), regime: regime('bull'), ...over };
}

const fillOf = (intent: OrderIntent, price: number, time: number, feeRate = 0.001): EngineFill => ({
  clientOrderId: intent.clientOrderId,
  tag: intent.tag,
  side: intent.side,
  qty: intent.qty,
  price,
  fee: intent.qty * price * feeRate,
  time,
});

/** Decide on candle i, fill the entry at the close, return the state with the protective orders placed. */
function enterAt(cfg: EngineConfig, i = 1, close = 20_000, state = initialSymbolState(cfg)) {
  const d = decide(state, input(i, close), cfg, ctx);
  assert.equal(d.decision.action, 'enter', d.decision.reason);
  const entry = d.intents[0];
  const f = applyFill(d.state, fillOf(entry, close, T0 + (i + 1) * HOUR), cfg, ctx);
  return { decided: d, entry, state: f.state, protective: f.intents };
}

describe('engine: client order ids', () => {
  it('are deterministic, at most 36 characters, accepted by the exchange schema, and read back', () => {
    const a = clientOrderId(ctx.workflowId, 12345, 'en');
    assert.equal(a, clientOrderId(ctx.workflowId, 12345, 'en'));
    assert.equal(clientOrderId(ctx.workflowId, 12345, 'entry'), a, 'a full tag name means its code');
    const long = clientOrderId('trader/binanceusdm/1000SHIB/USDT:USDT', Number.MAX_SAFE_INTEGER, 'tp');
    assert.ok(long.length <= 36, long);
    for (const id of [a, long]) assert.ok(ClientOrderId.safeParse(id).success, id);
    assert.deepEqual(parseClientOrderId(a), { workflowHash: a.slice(2, 10), seq: 12345, code: 'en', tag: 'entry' });
    assert.ok(a.startsWith(clientOrderIdPrefix(ctx.workflowId)), 'an id starts with its workflow prefix');
    assert.equal(parseClientOrderId('web-1234'), undefined);
  });

  it('differ by workflow, sequence and purpose', () => {
    const ids = new Set<string>();
    for (const wf of ['trader/binance/BTC/USDT', 'trader/binance/ETH/USDT']) for (let seq = 0; seq < 500; seq++) for (const c of ['en', 'ex', 'st', 'tp', 'sx', 'em']) ids.add(clientOrderId(wf, seq, c));
    assert.equal(ids.size, 2 * 500 * 6);
    assert.throws(() => clientOrderId(ctx.workflowId, 1, 'constructor'), /unknown order tag/);
    assert.throws(() => clientOrderId(ctx.workflowId, -1, 'en'), /non-negative integer/);
  });
});

describe('engine: decide', () => {
  const cfg = cfgOf();

  it('enters on the rules signal with a market buy sized from the sleeve (5 % cap x regime)', () => {
    const d = decide(initialSymbolState(cfg), input(1, 20_000), cfg, ctx);
    assert.equal(d.decision.action, 'enter');
    assert.equal(d.decision.seq, 1);
    assert.equal(d.intents.length, 1);
    const [i] = d.intents;
    assert.deepEqual([i.tag, i.side, i.type, i.price, i.clientOrderId], ['entry', 'buy', 'market', 20_000, clientOrderId(ctx.workflowId, 1, 'en')]);
    assert.ok(Math.abs(i.qty - (10_000 * 0.05) / 20_000) < 1e-12, `qty ${i.qty}`);
    const side = decide(initialSymbolState(cfg), input(1, 20_000, { regime: regime('sideways') }), cfg, ctx);
    assert.ok(Math.abs(side.intents[0].qty - (10_000 * 0.05 * 0.75) / 20_000) < 1e-12, 'sideways regime sizes at 0.75');
    assert.deepEqual(d.state.pending.map((p) => p.tag), ['entry']);
    assert.equal(d.state.lastDecision?.action, 'enter');
  });

  it('holds while warming up, on a candle that failed hygiene, and without a signal', () => {
    const s = initialSymbolState(cfg);
    assert.match(decide(s, input(1, 100, { features: [] }), cfg, ctx).decision.reason, /warming up/);
    const bad = decide(s, input(1, 100, { tradable: false, problems: ['gap: 3 candle(s) missing'] }), cfg, ctx);
    assert.deepEqual([bad.decision.action, bad.intents.length], ['hold', 0]);
    assert.match(bad.decision.reason, /hygiene: gap/);
    assert.equal(decide(s, input(1, 100, { features: bullish({ rsi_14: 75 }) }), cfg, ctx).decision.action, 'hold', 'overbought RSI');
    assert.equal(decide(s, input(1, 100, { regime: regime('volatile') }), cfg, ctx).decision.action, 'hold', 'volatile regime');
    assert.equal(decide(s, input(1, 100, { features: bullish({ adx_14: 15 }) }), cfg, ctx).decision.action, 'hold', 'no trend');
    assert.equal(decide(s, input(1, 100, { features: bullish({ macd_hist_12_26_9: Number.NaN }) }), cfg, ctx).decision.action, 'hold', 'NaN feature');
  });

  it('status gates: paused and reduce-only block entries, halted decides nothing', () => {
    for (const [status, reason] of [['paused', 'trading_paused'], ['reduce-only', 'reduce_only']] as const) {
      const d = decide(setStatus(initialSymbolState(cfg), status, 'test'), input(1, 20_000), cfg, ctx);
      assert.deepEqual([d.decision.action, d.decision.reason, d.intents.length], ['blocked', reason, 0]);
    }
    const h = decide(setStatus(initialSymbolState(cfg), 'halted', 'emergency'), input(1, 20_000), cfg, ctx);
    assert.deepEqual([h.decision.action, h.intents.length], ['hold', 0]);
    assert.throws(() => setStatus(initialSymbolState(cfg), 'frozen' as never, 'x'), /unknown trading status/);
  });

  it('account gates from the portfolio view: concurrent positions, exposure, drawdown, daily loss', () => {
    const base: PortfolioView = { openPositions: 0, totalExposure: 0, equity: 20_000, peakEquity: 20_000, dayStartEquity: 20_000, dailyPnl: 0 };
    const s = initialSymbolState(cfg);
    const cases: Array<[Partial<PortfolioView>, string]> = [
      [{ openPositions: 3 }, 'max_concurrent_positions'],
      [{ totalExposure: 10_000 }, 'max_total_exposure'],
      [{ equity: 16_000 }, 'max_drawdown'],
      [{ dailyPnl: -1_000 }, 'daily_loss_limit'],
    ];
    for (const [over, reason] of cases) {
      const d = decide(s, input(1, 20_000, { portfolio: { ...base, ...over } }), cfg, ctx);
      assert.deepEqual([d.decision.action, d.decision.reason], ['blocked', reason], JSON.stringify(over));
    }
    // Exposure room binds the size: 0.5 * 20000 - 9900 = 100 of room.
    const d = decide(s, input(1, 20_000, { portfolio: { ...base, totalExposure: 9_900 } }), cfg, ctx);
    assert.equal(d.decision.action, 'enter');
    assert.ok(Math.abs(d.intents[0].qty * 20_000 - 100) < 1e-9, `notional ${d.intents[0].qty * 20_000}`);
  });

  it('sizing uses the sleeve, not the account: the same decision whatever the account equity', () => {
    const s = initialSymbolState(cfg);
    const a = decide(s, input(1, 20_000, { portfolio: { openPositions: 0, totalExposure: 0, equity: 10_000, peakEquity: 10_000, dayStartEquity: 10_000, dailyPnl: 0 } }), cfg, ctx);
    const b = decide(s, input(1, 20_000, { portfolio: { openPositions: 1, totalExposure: 500, equity: 90_000, peakEquity: 90_000, dayStartEquity: 90_000, dailyPnl: 0 } }), cfg, ctx);
    assert.equal(a.intents[0].qty, b.intents[0].qty);
  });

  it('model strategies: no entry without a usable signal; ensemble, ppo and hybrid read it', () => {
    const s = initialSymbolState(cfg);
    const run = (strategy: BuiltinStrategyName, model?: ModelSignal, features = bullish()) => decide(s, input(1, 100, { model, features }), cfgOf(strategy), ctx).decision;
    for (const strategy of ['ensemble', 'ppo', 'hybrid'] as const) {
      assert.equal(run(strategy).action, 'hold', `${strategy} without a model`);
      assert.equal(run(strategy, { ok: false, error: 'onnx failed' }).action, 'hold', `${strategy} with a failed model`);
    }
    assert.match(run('ensemble', { ok: false, error: 'onnx failed' }).reason, /onnx failed/);
    assert.equal(run('ensemble', { ok: true, probUp: 0.6 }).action, 'enter');
    assert.equal(run('ensemble', { ok: true, probUp: 0.52 }).action, 'hold');
    assert.equal(run('ppo', { ok: true, action: 'long' }).action, 'enter');
    assert.equal(run('ppo', { ok: true, action: 'flat' }).action, 'hold');
    assert.equal(run('hybrid', { ok: true, probUp: 0.6 }).action, 'enter');
    assert.equal(run('hybrid', { ok: true, probUp: 0.6 }, bullish({ adx_14: 10 })).action, 'hold', 'hybrid needs the rules too');
    assert.equal(run('hybrid', { ok: true, probUp: 0.3 }).action, 'hold', 'hybrid needs the model too');
    const half = decide(s, input(1, 100, { model: { ok: true, probUp: 0.7, confidence: 0.5 } }), cfgOf('ensemble'), ctx);
    const full = decide(s, input(1, 100, { model: { ok: true, probUp: 0.7 } }), cfgOf('ensemble'), ctx);
    assert.ok(Math.abs(half.intents[0].qty - full.intents[0].qty / 2) < 1e-12, 'confidence scales the size');
  });

  it('the ensemble trades at the thresholds its signal carries (fitted per model), else at the fallback 0.55 / 0.45', () => {
    const cfg = cfgOf('ensemble');
    const s = initialSymbolState(cfg);
    const long = { ...s, position: enterAt(cfgOf(), 1, 100).state.position };
    const act = (state: SymbolState, model: ModelSignal) => decide(state, input(2, 100, { model, features: bullish() }), cfg, ctx).decision;
    const fitted = { ok: true, enterProb: 0.36, exitProb: 0.31 };
    assert.equal(act(s, { ...fitted, probUp: 0.37 }).action, 'enter', 'at the model\'s own 0.36');
    assert.match(act(s, { ...fitted, probUp: 0.37 }).reason, /P\(up\) 0\.370 >= 0\.360/);
    assert.equal(act(s, { ok: true, probUp: 0.37 }).action, 'hold', 'without thresholds: 0.55');
    assert.equal(act(long, { ...fitted, probUp: 0.33 }).action, 'hold', 'between the two: stay');
    assert.equal(act(long, { ...fitted, probUp: 0.3 }).action, 'exit');
    assert.equal(act(s, { ok: true, probUp: 0.5, enterProb: 0.4, exitProb: 0.45 }).action, 'hold', 'an inverted pair is not used: the fallback applies');
    assert.equal(modelThresholds({ ok: true, enterProb: 2 }, cfg.model).enterProb, 0.55);
  });

  it('hybrid (majority): two of rules, ensemble and policy must agree; workflows recorded before the rule keep "agreement"', () => {
    const s = initialSymbolState(cfgOf('hybrid'));
    const vote = (model: ModelSignal, features = bullish(), cfg = cfgOf('hybrid')) => decide(s, input(1, 100, { model, features }), cfg, ctx).decision;
    const fitted = { ok: true, enterProb: 0.36, exitProb: 0.31 };
    const noRules = bullish({ adx_14: 10 });
    assert.equal(vote({ ...fitted, probUp: 0.4, action: 'long' }, noRules).action, 'enter', 'ensemble + policy, rules against');
    assert.match(vote({ ...fitted, probUp: 0.4, action: 'long' }, noRules).reason, /in: ensemble \+ policy/);
    assert.equal(vote({ ...fitted, probUp: 0.33, action: 'long' }).action, 'enter', 'rules + policy, the ensemble abstains between its thresholds');
    assert.equal(vote({ ...fitted, probUp: 0.4, action: 'flat' }).action, 'enter', 'rules + ensemble beat the policy');
    assert.equal(vote({ ...fitted, probUp: 0.4 }, noRules).action, 'hold', 'one voice alone does not trade');
    assert.equal(vote({ ...fitted, probUp: 0.2, action: 'flat' }).action, 'hold', 'two against the rules');
    const long = { ...s, position: enterAt(cfgOf(), 1, 100).state.position };
    const out = (model: ModelSignal, features = bullish()) => decide(long, input(2, 100, { model, features }), cfgOf('hybrid'), ctx).decision.action;
    assert.equal(out({ ...fitted, probUp: 0.2, action: 'flat' }), 'exit', 'ensemble + policy want out');
    assert.equal(out({ ...fitted, probUp: 0.2 }), 'hold', 'the ensemble alone does not close');
    // An engine config from a workflow input recorded before hybridRule existed has no such field.
    const { hybridRule: _dropped, ...recorded } = cfgOf('hybrid');
    const legacy = recorded as EngineConfig;
    assert.equal(vote({ ...fitted, probUp: 0.4, action: 'long' }, bullish(), legacy).action, 'hold', 'agreement: the ensemble must reach 0.5');
    assert.equal(vote({ ok: true, probUp: 0.6 }, bullish(), legacy).action, 'enter');
  });

  it('the rules explain themselves', () => {
    assert.equal(rulesSignal(bullish(), regime('bull')).enter, true);
    assert.equal(rulesSignal(bearishTurn(), regime('bull')).exit, true);
    assert.equal(rulesSignal(bullish(), regime('bear')).exit, true);
    assert.match(rulesSignal(bullish({ adx_14: 10, rsi_14: 80 }), regime('sideways')).reason, /no uptrend, no momentum/);
  });
});

describe('engine: fills and protective orders', () => {
  const cfg = cfgOf();

  it('an entry fill opens the position and places a resting stop and target', () => {
    const { state, protective, entry } = enterAt(cfg, 1, 20_000);
    assert.ok(state.position, 'position open');
    assert.equal(state.position.entryPrice, 20_000);
    assert.equal(state.position.qty, entry.qty);
    const [stop, target] = protective;
    assert.deepEqual([stop.tag, stop.type, stop.side, stop.stopPrice, stop.qty], ['stop', 'stop_market', 'sell', 20_000 * 0.98, entry.qty]);
    assert.deepEqual([target.tag, target.type, target.side, target.price, target.qty], ['target', 'limit', 'sell', 20_000 * 1.04, entry.qty]);
    assert.deepEqual(state.pending.map((p) => p.tag).sort(), ['stop', 'target']);
    assert.deepEqual(JSON.parse(JSON.stringify(state)), state, 'the state is plain JSON');
  });

  it('ATR stops: the stop sits atrStopMult ATRs below the entry', () => {
    const c = cfgOf('rules', { stopMode: 'atr', atrStopMult: 2, atrTargetMult: 3 });
    const { protective } = enterAt(c, 1, 20_000);
    assert.equal(protective[0].stopPrice, 20_000 - 2 * 200);
    assert.equal(protective[1].price, 20_000 + 3 * 200);
  });

  it('a stop fill closes the trade, cancels the target, and starts the cooldown', () => {
    const { state, protective, entry } = enterAt(cfg, 1, 20_000);
    const stopFill = fillOf(protective[0], 19_590, T0 + 4 * HOUR);
    const r = applyFill(state, stopFill, cfg, ctx);
    assert.equal(r.state.position, null);
    assert.ok(r.closed, 'a trade closed');
    assert.equal(r.closed.exitReason, 'stop_loss');
    const fees = entry.qty * 20_000 * 0.001 + entry.qty * 19_590 * 0.001;
    assert.ok(Math.abs(r.closed.fees - fees) < 1e-9);
    assert.ok(Math.abs(r.closed.pnl - ((19_590 - 20_000) * entry.qty - fees)) < 1e-9);
    assert.deepEqual(r.intents.map((i) => [i.tag, i.cancelClientOrderId]), [['cancel', protective[1].clientOrderId]]);
    assert.equal(r.state.tradesClosed, 1);
    assert.deepEqual(r.state.stopOuts.recentStopOutBars, [Math.floor((T0 + 3 * HOUR) / HOUR)]);
    // The decision on the candle the stop-out happened in is blocked by the cooldown.
    const d = decide(r.state, input(3, 19_600), cfg, ctx);
    assert.deepEqual([d.decision.action, d.decision.reason], ['blocked', 'cooldown']);
    assert.equal(decide(r.state, input(5, 19_600), cfg, ctx).decision.action, 'enter', 'cooldown of 2 bars is over');
  });

  it('the stoploss guard pauses entries after 3 stop-outs in 24 bars', () => {
    let s = initialSymbolState(cfg);
    for (let k = 0; k < 3; k++) {
      const e = enterAt(cfg, 1 + 4 * k, 20_000, s);
      s = applyFill(e.state, fillOf(e.protective[0], 19_600, T0 + (3 + 4 * k) * HOUR), cfg, ctx).state;
    }
    const d = decide(s, input(13, 20_000), cfg, ctx);
    assert.deepEqual([d.decision.action, d.decision.reason], ['blocked', 'stoploss_guard']);
  });

  it('a target fill closes with take_profit and cancels the stop', () => {
    const { state, protective } = enterAt(cfg);
    const r = applyFill(state, fillOf(protective[1], 20_800, T0 + 5 * HOUR), cfg, ctx);
    assert.equal(r.closed?.exitReason, 'take_profit');
    assert.deepEqual(r.intents.map((i) => i.cancelClientOrderId), [protective[0].clientOrderId]);
    assert.deepEqual(r.state.stopOuts.recentStopOutBars, [], 'a take profit is no stop-out');
  });

  it('fills are idempotent: the same fill twice, or a fill of an unknown order, changes nothing', () => {
    const { state, protective } = enterAt(cfg);
    const f = fillOf(protective[1], 20_800, T0 + 5 * HOUR);
    const once = applyFill(state, f, cfg, ctx).state;
    const twice = applyFill(once, f, cfg, ctx);
    assert.equal(twice.state, once);
    assert.equal(twice.intents.length, 0);
    const foreign = applyFill(state, { ...f, clientOrderId: 'web-123' }, cfg, ctx);
    assert.equal(foreign.state, state);
  });

  it('a strategy exit cancels both protective orders first, then sells at market; paused still exits, halted does not', () => {
    const { state, protective } = enterAt(cfg);
    for (const status of ['active', 'paused', 'reduce-only'] as const) {
      const d = decide(setStatus(state, status, 't'), input(3, 20_100, { features: bearishTurn() }), cfg, ctx);
      assert.equal(d.decision.action, 'exit', status);
      assert.deepEqual(d.intents.map((i) => i.tag), ['cancel', 'cancel', 'exit']);
      assert.deepEqual(d.intents.slice(0, 2).map((i) => i.cancelClientOrderId).sort(), protective.map((p) => p.clientOrderId).sort());
      const exit = d.intents[2];
      assert.deepEqual([exit.side, exit.type, exit.qty], ['sell', 'market', state.position?.qty]);
      const closed = applyFill(d.state, fillOf(exit, 20_100, T0 + 4 * HOUR), cfg, ctx);
      assert.equal(closed.closed?.exitReason, 'signal');
      assert.equal(closed.intents.length, 0, 'nothing left to cancel');
    }
    const h = decide(setStatus(state, 'halted', 't'), input(3, 20_100, { features: bearishTurn() }), cfg, ctx);
    assert.deepEqual([h.decision.action, h.intents.length], ['hold', 0]);
  });

  it('a canceled protective order that filled anyway (lost race) still closes the position', () => {
    const { state, protective } = enterAt(cfg);
    const d = decide(state, input(3, 20_100, { features: bearishTurn() }), cfg, ctx);
    const r = applyFill(d.state, fillOf(protective[0], 19_600, T0 + 4 * HOUR), cfg, ctx);
    assert.equal(r.closed?.exitReason, 'stop_loss');
    assert.equal(r.state.position, null);
    // ...but not a later position: after an exit and a new entry, the old stop's fill is ignored.
    const exited = applyFill(d.state, fillOf(d.intents[2], 20_100, T0 + 4 * HOUR), cfg, ctx).state;
    const again = enterAt(cfg, 6, 20_200, exited).state;
    assert.equal(applyFill(again, fillOf(protective[0], 19_600, T0 + 8 * HOUR), cfg, ctx).state, again);
  });
});

describe('engine: trailing stop', () => {
  const cfg = cfgOf('rules', { trailingStopPct: 0.01 });

  it('moves the resting stop up by cancel and replace, never down, and only by a worthwhile step', () => {
    const { state, protective } = enterAt(cfg, 1, 20_000);
    // High 20,400: trail 1 % below = 20,196 > initial stop 19,600.
    const up = decide(state, input(2, 20_300, { candle: candle(2, 20_300, { high: 20_400, low: 20_150 }) }), cfg, ctx);
    assert.equal(up.decision.action, 'hold');
    assert.deepEqual(up.intents.map((i) => i.tag), ['cancel', 'stop']);
    assert.equal(up.intents[0].cancelClientOrderId, protective[0].clientOrderId);
    assert.equal(up.intents[1].stopPrice, 20_400 * 0.99);
    assert.equal(up.intents[1].reason, 'trailing_stop');
    assert.equal(up.state.position?.stopPrice, 20_400 * 0.99);
    // A lower high does not move it; a higher one by less than 0.1 % does not re-place it.
    assert.equal(decide(up.state, input(3, 20_250, { candle: candle(3, 20_250, { high: 20_300, low: 20_200 }) }), cfg, ctx).intents.length, 0);
    assert.equal(decide(up.state, input(3, 20_300, { candle: candle(3, 20_300, { high: 20_410, low: 20_250 }) }), cfg, ctx).intents.length, 0);
    // Its fill is a trailing stop, and a profitable one is no stop-out.
    const r = applyFill(up.state, fillOf(up.intents[1], 20_196, T0 + 4 * HOUR), cfg, ctx);
    assert.equal(r.closed?.exitReason, 'trailing_stop');
    assert.deepEqual(r.state.stopOuts.recentStopOutBars, []);
  });

  it('exits at market when the new stop would be at or above the close', () => {
    const { state } = enterAt(cfg, 1, 20_000);
    const d = decide(state, input(2, 20_100, { candle: candle(2, 20_100, { high: 20_600, low: 20_050 }) }), cfg, ctx);
    assert.equal(d.decision.action, 'exit');
    assert.deepEqual(d.intents.map((i) => i.tag), ['cancel', 'cancel', 'exit']);
    assert.equal(applyFill(d.state, fillOf(d.intents[2], 20_100, T0 + 3 * HOUR), cfg, ctx).closed?.exitReason, 'trailing_stop');
  });
});

describe('engine: emergency, refusals, orders gone', () => {
  const cfg = cfgOf();

  it('emergency: cancel working orders, sell at market; its fill closes with reason emergency', () => {
    const { state, protective } = enterAt(cfg);
    const intents = emergencyIntents(state, ctx);
    assert.deepEqual(intents.map((i) => i.tag), ['cancel', 'cancel', 'exit']);
    assert.deepEqual(intents.slice(0, 2).map((i) => i.cancelClientOrderId).sort(), protective.map((p) => p.clientOrderId).sort());
    assert.equal(intents[2].clientOrderId, clientOrderId(ctx.workflowId, state.seq, 'em'));
    assert.deepEqual(emergencyIntents(state, ctx), intents, 'the same intents again: a retried update sends nothing new');
    const r = applyFill(state, fillOf(intents[2], 19_900, T0 + 3 * HOUR), cfg, ctx);
    assert.equal(r.closed?.exitReason, 'emergency');
    const halted = setStatus(r.state, 'halted', 'emergency close');
    assert.equal(halted.tradingStatus, 'halted');
    assert.deepEqual(emergencyIntents(halted, ctx).filter((i) => i.tag !== 'cancel'), [], 'flat: nothing to sell');
  });

  it('a refused stop (already through the market) becomes a market exit with the stop reason', () => {
    const { state, protective } = enterAt(cfg);
    const r = applyRejection(state, { clientOrderId: protective[0].clientOrderId, reason: 'InvalidOrderError: would trigger immediately' }, cfg, ctx);
    const exit = r.intents.find((i) => i.tag === 'exit');
    assert.ok(exit, 'market exit');
    assert.equal(exit.clientOrderId, clientOrderId(ctx.workflowId, 1, 'sx'));
    assert.equal(applyFill(r.state, fillOf(exit, 19_500, T0 + 3 * HOUR), cfg, ctx).closed?.exitReason, 'stop_loss');
    const e = applyRejection(decide(initialSymbolState(cfg), input(1, 100), cfg, ctx).state, { clientOrderId: clientOrderId(ctx.workflowId, 1, 'en'), reason: 'below minimum' }, cfg, ctx);
    assert.deepEqual([e.state.pending.length, e.intents.length], [0, 0], 'a refused entry is forgotten');
  });

  it('a stop canceled behind our back is put back by the next decision', () => {
    const { state, protective } = enterAt(cfg);
    const s = applyOrderStatus(state, { clientOrderId: protective[0].clientOrderId, status: 'canceled' });
    assert.equal(s.position?.stopOrderId, null);
    const d = decide(s, input(2, 20_050), cfg, ctx);
    assert.deepEqual(d.intents.map((i) => [i.tag, i.stopPrice]), [['stop', 19_600]]);
    assert.equal(d.state.position?.stopOrderId, d.intents[0].clientOrderId);
  });
});

describe('engine: candle step and account view', () => {
  it('runCandleStep feeds fills, refusals and order states back until nothing is left to send', async () => {
    const cfg = cfgOf();
    const sent: OrderIntent[][] = [];
    const report = (intents: OrderIntent[]): ExecutionReport => {
      sent.push(intents);
      const out: ExecutionReport = { fills: [], orders: [], rejected: [] };
      for (const i of intents) {
        if (i.tag === 'entry') out.fills.push(fillOf(i, 20_000, T0 + 2 * HOUR));
        else if (i.tag === 'stop') out.rejected.push({ clientOrderId: i.clientOrderId, reason: 'would trigger immediately' });
        else if (i.tag === 'exit') out.fills.push(fillOf(i, 19_900, T0 + 2 * HOUR));
        else out.orders.push({ clientOrderId: i.cancelClientOrderId ?? i.clientOrderId, status: i.tag === 'cancel' ? 'canceled' : 'open', exchangeOrderId: 'x' });
      }
      return out;
    };
    const out = await runCandleStep(initialSymbolState(cfg), { after: null, fillsSince: 0 }, {
      prepare: async () => ({ done: false, input: input(1, 20_000), fills: [], fillsSince: 0, problems: [] }),
      execute: async (intents) => report(intents),
    }, cfg, ctx);
    assert.deepEqual(sent.map((b) => b.map((i) => i.tag)), [['entry'], ['stop', 'target'], ['cancel', 'exit']]);
    assert.equal(out.closed.length, 1);
    assert.equal(out.closed[0].exitReason, 'stop_loss');
    assert.equal(out.state.position, null);
    assert.deepEqual(out.cursor, { after: T0 + HOUR, fillsSince: 0 });
  });

  it('markAccount sums the sleeves at their marks and keeps the peak and the day start', () => {
    const cfg = cfgOf();
    const { state } = enterAt(cfg, 1, 20_000);
    const flat = initialSymbolState(cfg);
    const q = state.position!.qty;
    const a = markAccount([{ state, sleeveCapital: 10_000, mark: 21_000 }, { state: flat, sleeveCapital: 10_000, mark: 5 }], T0 + 2 * HOUR, null);
    assert.ok(Math.abs(a.view.equity - (20_000 + q * 1_000 - state.position!.entryFee)) < 1e-9);
    assert.deepEqual([a.view.openPositions, a.view.totalExposure], [1, q * 21_000]);
    const b = markAccount([{ state, sleeveCapital: 10_000, mark: 20_000 }, { state: flat, sleeveCapital: 10_000, mark: 5 }], T0 + 26 * HOUR, a.marks);
    assert.equal(b.view.peakEquity, a.view.equity);
    assert.equal(b.view.dayStartEquity, a.view.equity, 'a new UTC day starts from the last mark of the previous one');
    assert.ok(b.view.dailyPnl < 0, 'down since the day started');
  });
});

describe('engine: purity', () => {
  const dir = path.join(__dirname, '..', '..', 'lib', 'engine');
  // lib/strategy: the built-ins and the runner that checks answers (pure too: see the strategy purity test).
  const allowed = ['zod', '../candles', '../hash', '../regime', '../risk', '../features/schema', '../strategy/builtins', '../strategy/run'];

  it('imports only zod, pure lib modules and (as types) the contracts; no clock, randomness or process', () => {
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const src = fs.readFileSync(path.join(dir, f), 'utf8');
      for (const m of src.matchAll(/^(?:import|export) (type )?[^;]*? from '([^']+)'/gms)) {
        const [, typeOnly, spec] = m;
        const ok = spec.startsWith('./') || allowed.includes(spec) || (typeOnly !== undefined && spec === '../contracts/trading');
        assert.ok(ok, `${f} imports ${typeOnly ?? ''}${spec}`);
      }
      assert.doesNotMatch(src, /\b(Date|Math\.random|process|require|setTimeout|performance)\b/, f);
    }
  });

  it('bundles for the Temporal workflow sandbox (which refuses Node built-ins)', async function () {
    this.timeout(60_000); // bundles the workflow code with webpack: seconds, more while other test processes run
    const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
    const bundle = await bundleWorkflowCode({ workflowsPath: path.join(dir, 'index.ts'), logger: quiet });
    assert.ok(bundle.code.includes('runCandleStep') && bundle.code.includes('protectiveLevels'), 'the bundle lacks the engine');
  });
});
