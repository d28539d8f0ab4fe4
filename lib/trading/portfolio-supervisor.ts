import { drawdownWarningAlert, killSwitchTrippedAlert, type Alert } from '../alerts';
import type { Log } from '../log';
import { MessageOrigin, symbolWorkflowId, type EquitySnapshotRecord, type PortfolioStateView, type TradingStatus } from '../contracts/trading';
import type { PortfolioCarried, PortfolioInput } from '../contracts/workflows';
import { continueAsNewDue, type RunHistory } from './continue-as-new';

/**
 * The account's guard without Temporal: everything PortfolioWorkflow (workflows/portfolio.ts)
 * knows and decides besides calling activities and signalling its symbols. It holds the kill
 * switch, the status it asked of each symbol, equity and its peak; turns operator commands into
 * commands for its symbols (refusing a one-symbol resume while the switch is tripped); and, on
 * each equity check, decides the drawdown warning, the kill switch trip (MAX_DRAWDOWN) and the
 * daily-loss pause until the next UTC day. Pure: the clock is an argument.
 */

/** A status the portfolio asks of one symbol workflow (halting goes through the emergency close). */
export interface SymbolCommand {
  symbol: string;
  workflowId: string;
  status: Exclude<TradingStatus, 'halted'>;
  origin: MessageOrigin;
}

/** What an equity check decided, in the order the workflow carries it out. */
export interface EquityCheck {
  /** The drawdown is past 80 % of MAX_DRAWDOWN (and the switch still armed). */
  warning?: Alert;
  /** Trip the kill switch for this reason. */
  trip?: string;
  /** Pauses for the daily loss limit, or resumes on the next UTC day. */
  commands: SymbolCommand[];
}

/** What the portfolioSnapshot activity returns (activities/trading PortfolioSnapshot), as far as the limits need it. */
export interface EquitySnapshot {
  equity: number;
  dayStartEquity: number;
  dailyPnl: number;
  /** For the ledger's snapshot: free quote currency, and open notional at mark. */
  cash?: number;
  totalExposure?: number;
}

const DAY_MS = 86_400_000;
// Warn once the drawdown has used this share of MAX_DRAWDOWN.
const DRAWDOWN_WARNING_SHARE = 0.8;
const DEFAULT_RECONCILE_EVERY_CHECKS = 15;
const utcDay = (ms: number): number => Math.floor(ms / DAY_MS);

export class PortfolioSupervisor {
  readonly symbols: string[];
  private readonly ids: Map<string, string>;
  private c: PortfolioCarried;

  constructor(
    private readonly input: PortfolioInput,
    readonly workflowId: string,
    private readonly log: Log,
  ) {
    this.symbols = input.symbols.map((s) => s.symbol);
    this.ids = new Map(input.symbols.map((s) => [s.symbol, symbolWorkflowId(s.exchange, s.symbol)]));
    this.c = input.carried ?? {
      killSwitch: { tripped: false },
      peakEquity: null,
      equity: null,
      requestedStatus: Object.fromEntries(this.symbols.map((s) => [s, 'active' as TradingStatus])),
      started: false,
    };
  }

  /** The symbol workflows were started (once per account, not per run). */
  get started(): boolean {
    return this.c.started;
  }

  markStarted(): void {
    this.c.started = true;
  }

  // --- operator commands --------------------------------------------------------------------------

  /** pause / reduceOnly of one symbol or (no symbol) all of them. A signal cannot be refused: bad ones are logged and ignored. */
  requestStatus(message: { symbol?: string } & MessageOrigin, status: SymbolCommand['status']): SymbolCommand[] {
    if (!MessageOrigin.safeParse(message).success) {
      this.log.warn({ status, message: String(JSON.stringify(message)).slice(0, 200) }, 'ignored a command without a valid origin { by: "<who>" }');
      return [];
    }
    const { symbol, by, reason } = message;
    if (symbol !== undefined && !this.ids.has(symbol)) {
      this.log.warn({ symbol, by, trades: this.symbols }, 'ignored a command for an unknown symbol');
      return [];
    }
    const list = symbol === undefined ? this.symbols : [symbol];
    return list.map((s) => {
      this.c.requestedStatus[s] = status;
      return { symbol: s, workflowId: this.ids.get(s)!, status, origin: { by, reason } };
    });
  }

  /**
   * Resume of one symbol or all. While the kill switch is tripped only a resume of every symbol is
   * obeyed, and it re-arms the switch, measuring drawdown from the equity of now on.
   */
  resume(message: { symbol?: string } & MessageOrigin): SymbolCommand[] {
    if (this.c.killSwitch.tripped && MessageOrigin.safeParse(message).success) {
      if (message.symbol !== undefined) {
        this.log.warn({ symbol: message.symbol, by: message.by }, 'resume of one symbol refused: the kill switch is tripped; resume all symbols to re-arm it');
        return [];
      }
      this.log.warn({ by: message.by, was: this.c.killSwitch.reason }, 'kill switch re-armed by operator');
      this.c.killSwitch = { tripped: false };
      this.c.peakEquity = this.c.equity;
    }
    return this.requestStatus(message, 'active');
  }

  /** Trips the kill switch (the first reason stays) and asks every symbol to halt; returns the alert to raise. */
  trip(reason: string, by: string, now: number): Alert {
    if (!this.c.killSwitch.tripped) this.c.killSwitch = { tripped: true, reason, at: now, by };
    for (const s of this.symbols) this.c.requestedStatus[s] = 'halted';
    this.log.error({ reason, by }, 'kill switch tripped: closing every position');
    return killSwitchTrippedAlert({ account: this.input.account, reason, by });
  }

  /** The emergencyCloseSymbols activity's arguments: every symbol of the account. */
  emergencyCloseArgs(reason: string, by: string): { account: string; workflowIds: string[]; origin: MessageOrigin; alert: string } {
    return { account: this.input.account, workflowIds: [...this.ids.values()], origin: { by, reason }, alert: `Kill switch tripped: ${reason}` };
  }

  // --- equity checks ------------------------------------------------------------------------------

  /** Whether check number `checks` (from 1) reconciles the ledger with the exchange first. */
  reconcileDue(checks: number): boolean {
    return checks % (this.input.reconcileEveryChecks ?? DEFAULT_RECONCILE_EVERY_CHECKS) === 0;
  }

  /** The warning for a reconciliation that found differences (nothing is changed by it). */
  reconciled(result: { ok: boolean; differences: ReadonlyArray<{ message: string }> }): Alert | null {
    if (result.ok) return null;
    const some = result.differences
      .slice(0, 5)
      .map((d) => d.message)
      .join('; ');
    const text = `Reconciliation for ${this.input.account}: ${result.differences.length} difference(s) between the ledger and the exchange (nothing was changed): ${some}`;
    return { severity: 'warning', key: `reconcile/${this.input.account}`, text: text.slice(0, 3900) };
  }

  /**
   * The portfolioSnapshot activity's arguments. The peak goes along for the drawdown metric the
   * activity writes (workflow code does no I/O).
   */
  snapshotRequest(): { account: string; symbols: string[]; peakEquity: number | null } {
    return { account: this.input.account, symbols: this.symbols, peakEquity: this.c.peakEquity };
  }

  check(snap: EquitySnapshot, now: number): EquityCheck {
    const c = this.c;
    const { maxDrawdown, dailyLossLimit } = this.input.limits;
    c.equity = snap.equity;
    c.peakEquity = Math.max(c.peakEquity ?? snap.equity, snap.equity);
    const dd = c.peakEquity > 0 ? (c.peakEquity - snap.equity) / c.peakEquity : 0;
    const daily = snap.dayStartEquity > 0 ? -snap.dailyPnl / snap.dayStartEquity : 0;
    const armed = !c.killSwitch.tripped;
    const out: EquityCheck = { commands: [] };
    if (armed && dd >= DRAWDOWN_WARNING_SHARE * maxDrawdown && dd < maxDrawdown) out.warning = drawdownWarningAlert({ account: this.input.account, drawdown: dd, limit: maxDrawdown });
    if (armed && dd >= maxDrawdown) {
      out.trip = `drawdown ${(dd * 100).toFixed(2)} % reached MAX_DRAWDOWN ${(maxDrawdown * 100).toFixed(2)} %`;
    } else if (armed && daily >= dailyLossLimit && !c.dailyPaused) {
      // The daily loss limit pauses entries until the next UTC day rather than closing everything.
      const active = this.symbols.filter((s) => c.requestedStatus[s] === 'active');
      const origin = { by: 'portfolio', reason: `daily loss ${(daily * 100).toFixed(2)} % reached the limit` };
      for (const s of active) out.commands.push(...this.requestStatus({ symbol: s, ...origin }, 'paused'));
      c.dailyPaused = { day: utcDay(now), symbols: active };
    }
    if (c.dailyPaused && utcDay(now) !== c.dailyPaused.day) {
      // A new UTC day: what the daily limit paused (and nobody changed since) trades again.
      const origin = { by: 'portfolio', reason: 'new UTC day after the daily loss limit' };
      if (armed && out.trip === undefined) {
        for (const s of c.dailyPaused.symbols) if (c.requestedStatus[s] === 'paused') out.commands.push(...this.requestStatus({ symbol: s, ...origin }, 'active'));
      }
      c.dailyPaused = undefined;
    }
    return out;
  }

  /**
   * The equity snapshot of the check just made (`check` first), for the ledger: equity, cash and
   * exposure as the activity saw them, the peak and drawdown as the kill switch measures them.
   */
  equityRecord(snap: EquitySnapshot, now: number): EquitySnapshotRecord {
    const v = this.view();
    return {
      account: this.input.account,
      ts: now,
      equity: snap.equity,
      cash: snap.cash ?? snap.equity - (snap.totalExposure ?? 0),
      exposure: snap.totalExposure ?? 0,
      peakEquity: v.peakEquity ?? snap.equity,
      drawdown: v.drawdown ?? 0,
    };
  }

  // --- what operators see -------------------------------------------------------------------------

  view(): PortfolioStateView {
    const c = this.c;
    return {
      workflowId: this.workflowId,
      account: this.input.account,
      symbols: this.symbols,
      equity: c.equity,
      peakEquity: c.peakEquity,
      drawdown: c.equity !== null && c.peakEquity ? Math.max(0, (c.peakEquity - c.equity) / c.peakEquity) : null,
      killSwitch: c.killSwitch,
      requestedStatus: c.requestedStatus,
    };
  }

  /** The Temporal UI's "current details" (markdown). */
  details(): string {
    const v = this.view();
    const k = v.killSwitch;
    return [
      `**Portfolio ${this.input.account}** (${this.input.mode}, ${this.input.exchange}): ${this.symbols.join(', ')}`,
      `Kill switch: ${k.tripped ? `**TRIPPED** (${k.reason}, by ${k.by})` : 'armed'}`,
      `Equity: ${v.equity?.toFixed(2) ?? '-'}; peak ${v.peakEquity?.toFixed(2) ?? '-'}; drawdown ${v.drawdown === null ? '-' : (v.drawdown * 100).toFixed(2) + ' %'}`,
    ].join('\n');
  }

  // --- runs -----------------------------------------------------------------------------------------

  shouldContinueAsNew(run: RunHistory): boolean {
    return continueAsNewDue(run, this.input.continueAsNewAfterEvents);
  }

  carried(): PortfolioCarried {
    return this.c;
  }
}
