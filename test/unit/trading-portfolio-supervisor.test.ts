import assert from 'node:assert/strict';
import { engineConfig } from '../../lib/engine';
import type { Log } from '../../lib/log';
import type { MessageOrigin } from '../../lib/contracts/trading';
import type { PortfolioInput, SymbolTraderInput } from '../../lib/contracts/workflows';
import { PortfolioSupervisor, type SymbolCommand } from '../../lib/trading/portfolio-supervisor';

/**
 * PortfolioSupervisor (lib/trading/portfolio-supervisor.ts) without a Temporal server: the kill
 * switch, the drawdown warning and trip, the daily loss pause and its lifting the next UTC day,
 * operator commands fanned out to the symbols, the state view, the UI details and the state
 * carried across continue-as-new.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2024, 0, 1, 9); // 09:00 UTC
const SYMBOLS = ['BTC/USDT', 'ETH/USDT'];
const op: MessageOrigin = { by: 'telegram:42', reason: 'test' };

function symbolInput(symbol: string): SymbolTraderInput {
  return {
    symbol,
    exchange: 'binance',
    account: 'paper-binance',
    mode: 'paper',
    timeframe: '1h',
    timeframeMs: HOUR,
    engine: engineConfig({ symbol, strategy: 'rules', risk: {}, timeframeMs: HOUR, sleeveCapital: 5_000 }),
    candleDelayMs: 5_000,
  };
}

function portfolioInput(over: Partial<PortfolioInput> = {}): PortfolioInput {
  return {
    account: 'paper-binance',
    exchange: 'binance',
    mode: 'paper',
    symbols: SYMBOLS.map(symbolInput),
    taskQueue: 'trading',
    limits: { maxDrawdown: 0.1, dailyLossLimit: 0.05 },
    checkEveryMs: 60_000,
    ...over,
  };
}

interface LogLine {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}
function recordingLog(lines: LogLine[]): Log {
  const at = (level: string) => (fields: object, msg?: string) => void lines.push({ level, msg: msg ?? '', fields: fields as Record<string, unknown> });
  const log: Log = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => log };
  return log;
}

const snap = (equity: number, dayStartEquity = equity, dailyPnl = equity - dayStartEquity) => ({ equity, dayStartEquity, dailyPnl });
const brief = (cs: SymbolCommand[]) => cs.map((c) => `${c.symbol}:${c.status}`);

describe('PortfolioSupervisor: the portfolio workflow\'s kill switch and limits without a server', () => {
  it('starts armed with every symbol active; view and UI details say so', () => {
    const p = new PortfolioSupervisor(portfolioInput(), 'portfolio/paper-binance', recordingLog([]));
    assert.equal(p.started, false);
    assert.deepEqual(p.view(), {
      workflowId: 'portfolio/paper-binance',
      account: 'paper-binance',
      symbols: SYMBOLS,
      equity: null,
      peakEquity: null,
      drawdown: null,
      killSwitch: { tripped: false },
      requestedStatus: { 'BTC/USDT': 'active', 'ETH/USDT': 'active' },
    });
    assert.equal(p.details(), ['**Portfolio paper-binance** (paper, binance): BTC/USDT, ETH/USDT', 'Kill switch: armed', 'Equity: -; peak -; drawdown -'].join('\n'));
  });

  it('operator commands: one symbol or all, to its workflow id; an unknown symbol or a message without a valid origin is ignored with a warning', () => {
    const lines: LogLine[] = [];
    const p = new PortfolioSupervisor(portfolioInput(), 'portfolio/x', recordingLog(lines));
    const one = p.requestStatus({ symbol: 'ETH/USDT', ...op }, 'paused');
    assert.deepEqual(one, [{ symbol: 'ETH/USDT', workflowId: 'trader/binance/ETH/USDT', status: 'paused', origin: op }]);
    assert.deepEqual(brief(p.requestStatus({ by: 'cli:me' }, 'reduce-only')), ['BTC/USDT:reduce-only', 'ETH/USDT:reduce-only']);
    assert.deepEqual(p.view().requestedStatus, { 'BTC/USDT': 'reduce-only', 'ETH/USDT': 'reduce-only' });

    assert.deepEqual(p.requestStatus({ symbol: 'DOGE/USDT', ...op }, 'paused'), []);
    assert.equal(lines.at(-1)?.msg, 'ignored a command for an unknown symbol');
    for (const bad of [undefined, {}, { by: '' }, { symbol: 'BTC/USDT' }]) {
      assert.deepEqual(p.requestStatus(bad as unknown as MessageOrigin, 'paused'), [], JSON.stringify(bad));
      assert.deepEqual(p.resume(bad as unknown as MessageOrigin), []);
    }
    assert.match(lines.at(-1)?.msg ?? '', /without a valid origin/);
    assert.deepEqual(p.view().requestedStatus, { 'BTC/USDT': 'reduce-only', 'ETH/USDT': 'reduce-only' }, 'nothing changed');
  });

  it('the equity snapshot of a check: equity, cash and exposure as seen, peak and drawdown as the kill switch measures them', () => {
    const p = new PortfolioSupervisor(portfolioInput(), 'portfolio/x', recordingLog([]));
    p.check(snap(10_000), T0);
    assert.deepEqual(p.equityRecord(snap(10_000), T0), { account: 'paper-binance', ts: T0, equity: 10_000, cash: 10_000, exposure: 0, peakEquity: 10_000, drawdown: 0 });
    p.check(snap(11_000), T0 + 60_000);
    const s = { ...snap(10_450), cash: 9_950, totalExposure: 500 };
    p.check(s, T0 + 120_000);
    assert.deepEqual(p.equityRecord(s, T0 + 120_000), { account: 'paper-binance', ts: T0 + 120_000, equity: 10_450, cash: 9_950, exposure: 500, peakEquity: 11_000, drawdown: 0.05 });
  });

  it('equity checks: the peak follows equity; a warning past 80 % of MAX_DRAWDOWN; a trip at it, halting every symbol', () => {
    const lines: LogLine[] = [];
    const p = new PortfolioSupervisor(portfolioInput(), 'portfolio/x', recordingLog(lines));
    assert.deepEqual(p.check(snap(10_000), T0), { commands: [] });
    assert.deepEqual(p.check(snap(11_000), T0), { commands: [] });
    assert.equal(p.view().peakEquity, 11_000);
    assert.deepEqual(p.snapshotRequest(), { account: portfolioInput().account, symbols: ['BTC/USDT', 'ETH/USDT'], peakEquity: 11_000 }, 'the snapshot activity gets the peak, for the drawdown metric');
    assert.deepEqual(p.check(snap(10_500), T0), { commands: [] }, 'a 4.5 % drawdown is below 80 % of 10 %');

    const warned = p.check(snap(10_010), T0); // 9 %
    assert.equal(warned.trip, undefined);
    assert.equal(warned.warning?.key, 'drawdown/paper-binance');
    assert.match(warned.warning?.text ?? '', /^Drawdown 9\.00% for paper-binance \(limit 10\.00%, 90% of it used\)/);
    assert.match(p.details(), /Equity: 10010\.00; peak 11000\.00; drawdown 9\.00 %/);

    const breach = p.check(snap(9_900), T0); // 10 %
    assert.equal(breach.warning, undefined, 'at the limit: the trip, not a warning');
    assert.equal(breach.trip, 'drawdown 10.00 % reached MAX_DRAWDOWN 10.00 %');
    assert.deepEqual(breach.commands, []);
    assert.equal(p.view().killSwitch.tripped, false, 'the workflow trips it, under its lock');

    const alert = p.trip(breach.trip!, 'portfolio', T0 + 1);
    assert.equal(alert.severity, 'critical');
    assert.equal(alert.key, 'kill-switch/paper-binance');
    assert.match(alert.text, /Kill switch tripped for paper-binance: drawdown 10\.00 % reached MAX_DRAWDOWN 10\.00 % \(by portfolio\)/);
    assert.deepEqual(p.view().killSwitch, { tripped: true, reason: breach.trip, at: T0 + 1, by: 'portfolio' });
    assert.deepEqual(p.view().requestedStatus, { 'BTC/USDT': 'halted', 'ETH/USDT': 'halted' });
    assert.equal(lines.at(-1)?.level, 'error');
    assert.match(p.details(), /Kill switch: \*\*TRIPPED\*\* \(drawdown 10\.00 % .*, by portfolio\)/);
    assert.deepEqual(p.emergencyCloseArgs(breach.trip!, 'portfolio'), {
      account: 'paper-binance',
      workflowIds: ['trader/binance/BTC/USDT', 'trader/binance/ETH/USDT'],
      origin: { by: 'portfolio', reason: breach.trip },
      alert: `Kill switch tripped: ${breach.trip}`,
    });

    // Tripped: no more warnings or trips, whatever equity does; a second trip keeps the first reason.
    assert.deepEqual(p.check(snap(5_000), T0 + HOUR), { commands: [] });
    p.trip('emergency close', 'telegram:42', T0 + 2 * HOUR);
    assert.equal(p.view().killSwitch.reason, breach.trip);
  });

  it('while tripped only a resume of every symbol is obeyed; it re-arms the switch and measures drawdown from there', () => {
    const lines: LogLine[] = [];
    const p = new PortfolioSupervisor(portfolioInput(), 'portfolio/x', recordingLog(lines));
    p.check(snap(10_000), T0);
    p.check(snap(8_000), T0);
    p.trip('operator', 'telegram:42', T0);

    assert.deepEqual(p.resume({ symbol: 'BTC/USDT', ...op }), [], 'one symbol: refused');
    assert.match(lines.at(-1)?.msg ?? '', /resume of one symbol refused/);
    assert.equal(p.view().killSwitch.tripped, true);
    assert.equal(p.requestStatus({ symbol: 'BTC/USDT', ...op }, 'paused').length, 1, 'pausing a symbol is always allowed');

    assert.deepEqual(brief(p.resume(op)), ['BTC/USDT:active', 'ETH/USDT:active']);
    assert.deepEqual(p.view().killSwitch, { tripped: false });
    assert.equal(p.view().peakEquity, 8_000, 'the peak starts again from the equity at re-arming');
    assert.equal(p.snapshotRequest().peakEquity, 8_000, 'and the drawdown metric is measured from it too');
    assert.equal(p.view().drawdown, 0);
    assert.deepEqual(p.check(snap(7_900), T0), { commands: [] }, '1.25 % below the new peak: nothing');
    assert.deepEqual(brief(p.resume({ symbol: 'ETH/USDT', ...op })), ['ETH/USDT:active'], 'armed: one symbol may resume');
  });

  it('the daily loss limit pauses the active symbols until the next UTC day, then resumes those still paused', () => {
    const p = new PortfolioSupervisor(portfolioInput(), 'portfolio/x', recordingLog([]));
    p.requestStatus({ symbol: 'ETH/USDT', by: 'cli:me' }, 'reduce-only');
    assert.deepEqual(p.check(snap(10_000, 10_000, 0), T0), { commands: [] });
    const paused = p.check(snap(9_600, 10_000, -400), T0 + HOUR); // 4 % of the day's start: within the 5 % limit
    assert.deepEqual(paused, { commands: [] });
    const hit = p.check(snap(9_500, 10_000, -500), T0 + 2 * HOUR);
    assert.equal(hit.trip, undefined, 'a 5 % drawdown does not trip a 10 % limit');
    assert.deepEqual(brief(hit.commands), ['BTC/USDT:paused'], 'only the active symbol: the reduce-only one is left alone');
    assert.deepEqual(hit.commands[0].origin, { by: 'portfolio', reason: 'daily loss 5.00 % reached the limit' });
    assert.deepEqual(p.carried().dailyPaused, { day: Math.floor((T0 + 2 * HOUR) / DAY), symbols: ['BTC/USDT'] });
    assert.deepEqual(p.check(snap(9_400, 10_000, -600), T0 + 3 * HOUR).commands, [], 'paused once a day');

    const nextDay = p.check(snap(9_400, 9_400, 0), T0 + DAY);
    assert.deepEqual(brief(nextDay.commands), ['BTC/USDT:active']);
    assert.deepEqual(nextDay.commands[0].origin, { by: 'portfolio', reason: 'new UTC day after the daily loss limit' });
    assert.equal(p.carried().dailyPaused, undefined);
    assert.deepEqual(p.view().requestedStatus, { 'BTC/USDT': 'active', 'ETH/USDT': 'reduce-only' });
  });

  it('the next UTC day leaves alone what an operator changed since, and resumes nothing while the switch is tripped', () => {
    const a = new PortfolioSupervisor(portfolioInput(), 'portfolio/a', recordingLog([]));
    a.check(snap(10_000), T0);
    assert.equal(a.check(snap(9_400, 10_000, -600), T0).commands.length, 2);
    a.requestStatus({ symbol: 'ETH/USDT', by: 'cli:me' }, 'reduce-only');
    assert.deepEqual(brief(a.check(snap(9_400), T0 + DAY).commands), ['BTC/USDT:active'], 'ETH was set to reduce-only by hand: it stays so');

    const b = new PortfolioSupervisor(portfolioInput(), 'portfolio/b', recordingLog([]));
    b.check(snap(10_000), T0);
    b.check(snap(9_400, 10_000, -600), T0);
    b.trip('operator', 'telegram:42', T0);
    assert.deepEqual(b.check(snap(9_400), T0 + DAY).commands, []);
    assert.equal(b.carried().dailyPaused, undefined);

    // The day turns at the same check that breaks MAX_DRAWDOWN: the trip, and no resumes.
    const c = new PortfolioSupervisor(portfolioInput(), 'portfolio/c', recordingLog([]));
    c.check(snap(10_000), T0);
    c.check(snap(9_400, 10_000, -600), T0);
    const both = c.check(snap(8_900, 9_400, -500), T0 + DAY);
    assert.ok(both.trip);
    assert.deepEqual(both.commands, []);
  });

  it('reconciliation: a warning naming the first differences, none when the books agree; due every N checks', () => {
    const p = new PortfolioSupervisor(portfolioInput({ reconcileEveryChecks: 3 }), 'portfolio/x', recordingLog([]));
    assert.equal(p.reconciled({ ok: true, differences: [] }), null);
    const diffs = Array.from({ length: 7 }, (_, i) => ({ message: `difference ${i + 1}` }));
    const alert = p.reconciled({ ok: false, differences: diffs });
    assert.equal(alert?.severity, 'warning');
    assert.equal(alert?.key, 'reconcile/paper-binance');
    assert.equal(alert?.text, 'Reconciliation for paper-binance: 7 difference(s) between the ledger and the exchange (nothing was changed): difference 1; difference 2; difference 3; difference 4; difference 5');
    assert.equal(p.reconciled({ ok: false, differences: [{ message: 'x'.repeat(5_000) }] })?.text.length, 3900, 'under Telegram\'s 4,096 characters');
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => p.reconcileDue(n)), [false, false, true, false, false, true]);
    assert.equal(new PortfolioSupervisor(portfolioInput(), 'portfolio/y', recordingLog([])).reconcileDue(15), true, 'every 15 checks by default');
  });

  it('continue-as-new: the next run carries the kill switch, the peak, the requested statuses and that the symbols were started', () => {
    const p = new PortfolioSupervisor(portfolioInput({ continueAsNewAfterEvents: 500 }), 'portfolio/x', recordingLog([]));
    p.markStarted();
    p.check(snap(10_000), T0);
    p.check(snap(8_000), T0);
    p.trip('drawdown', 'portfolio', T0);
    assert.equal(p.shouldContinueAsNew({ historyLength: 500, continueAsNewSuggested: false }), false);
    assert.equal(p.shouldContinueAsNew({ historyLength: 501, continueAsNewSuggested: false }), true);
    assert.equal(p.shouldContinueAsNew({ historyLength: 2, continueAsNewSuggested: true }), true);

    const carried = JSON.parse(JSON.stringify(p.carried()));
    const next = new PortfolioSupervisor(portfolioInput({ carried }), 'portfolio/x', recordingLog([]));
    assert.equal(next.started, true, 'the new run does not start the symbol workflows again');
    assert.deepEqual(next.view(), p.view());
    assert.deepEqual(next.resume({ symbol: 'BTC/USDT', ...op }), [], 'still tripped in the new run');
  });
});
