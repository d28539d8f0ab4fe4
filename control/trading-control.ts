import { Client, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { z } from 'zod';
import { emergencyCloseUpdate, pauseSignal, portfolioEmergencyUpdate, portfolioSetStrategyUpdate, portfolioPauseSignal, portfolioReduceOnlySignal, portfolioResumeSignal, portfolioStateQuery, reduceOnlySignal, resumeSignal, stateQuery } from '../workflows/messages';
import { ModeKey, SymbolKey, TradingStatusKey } from '../lib/contracts/search-attributes';
import { portfolioWorkflowId, symbolWorkflowId, type EmergencyCloseResult, type MessageOrigin, type OpenPositionView, type PortfolioStateView, type StrategySwitchResult, type SymbolStateView, type TradingStatus } from '../lib/contracts/trading';

/**
 * The Temporal client side every operator surface shares (the `trader` CLI and the Telegram
 * bot): find the running symbol workflows, read their state, and send the kill-switch messages.
 *
 * Status changes go to the portfolio workflow, which owns the account and fans them out to its
 * symbols (and remembers them for symbols that are not running). If the portfolio workflow is
 * not running, the kill switch must still work: the same messages then go straight to every
 * running symbol workflow, and the result says so (`via: 'direct'`).
 */

export const SYMBOL_WORKFLOW_TYPE = 'symbolTraderWorkflow';

export class UnknownSymbolError extends Error {
  override name = 'UnknownSymbolError';
  constructor(
    readonly symbol: string,
    readonly known: string[],
  ) {
    super(known.length > 0 ? `unknown symbol ${symbol}: known symbols are ${known.join(', ')}` : `unknown symbol ${symbol}: no symbol workflow is running`);
  }
}

/** Emergency close that reached only some symbols (direct mode): what was done and what failed. */
export class EmergencyCloseIncomplete extends Error {
  override name = 'EmergencyCloseIncomplete';
  constructor(
    readonly results: EmergencyCloseResult[],
    readonly failures: { symbol: string; error: string }[],
  ) {
    super(`emergency close failed for ${failures.map((f) => `${f.symbol} (${f.error})`).join(', ')}; closed for ${results.map((r) => r.symbol).join(', ') || 'none'}`);
  }
}

/** A strategy switch the portfolio (or the worker that checked it) refused; nothing changed. */
export class StrategyRefused extends Error {
  override name = 'StrategyRefused';
}

/** The innermost message of an update's failure (the activity's or the validator's reason). */
function refusalText(err: unknown): string {
  let e: unknown = err;
  let text = err instanceof Error ? err.message : String(err);
  while (e instanceof Error && e.cause) {
    e = e.cause;
    if (e instanceof Error && e.message) text = e.message;
  }
  if (err instanceof WorkflowNotFoundError) return 'the portfolio workflow is not running (start trading with trader up)';
  if (err instanceof EmergencyCloseTimeout) return `no answer within ${Math.round(err.timeoutMs / 1000)} s: is a trading worker running? (the switch is checked on one)`;
  return text;
}

/** The update was sent but no result came back in time; it may still run when a worker picks it up. */
export class EmergencyCloseTimeout extends Error {
  override name = 'EmergencyCloseTimeout';
  constructor(readonly timeoutMs: number) {
    super(`the emergency close was sent but not confirmed within ${Math.round(timeoutMs / 1000)} s; it may still run when the trading worker picks it up: check positions`);
  }
}

export interface SymbolWorkflowSummary {
  symbol: string;
  workflowId: string;
  runId: string;
  /** From the TradingStatus search attribute (visibility lags a moment behind the workflow). */
  tradingStatus?: TradingStatus;
  mode?: string;
  startTime: Date;
}

export interface TradingStatusReport {
  account: string;
  exchange: string;
  /** Null when the portfolio workflow is not running (`portfolioError` says why). */
  portfolio: PortfolioStateView | null;
  portfolioError?: string;
  symbols: SymbolStateView[];
  /** Running symbol workflows that did not answer the state query in time. */
  unreachable: { symbol: string; workflowId: string; error: string }[];
}

export type StatusAction = 'pause' | 'resume' | 'reduceOnly';

export interface StatusChangeResult {
  action: StatusAction;
  /** The symbols the request covers. */
  symbols: string[];
  via: 'portfolio' | 'direct';
  /** direct mode only: symbols whose signal failed. */
  failures: { symbol: string; error: string }[];
}

export const ControlOptions = z.object({
  account: z.string().trim().min(1, 'account: must not be empty'),
  exchange: z.string().regex(/^[a-z0-9]+$/, 'exchange: a ccxt exchange id such as binance'),
  namespace: z.string().min(1).optional(),
  /** Per query (state of one workflow); a stuck workflow must not hang /status. */
  queryTimeoutMs: z.number().int().positive().default(10_000),
  /** How long emergency() waits for the update's result. */
  emergencyTimeoutMs: z.number().int().positive().default(120_000),
});
export type ControlOptions = z.input<typeof ControlOptions>;

const Origin = z.object({ by: z.string().trim().min(1, 'origin.by: who asked must be given'), reason: z.string().max(500).optional() });

/** Statuses a symbol reaches after each action. */
export const TARGET_STATUS: Record<StatusAction, TradingStatus> = { pause: 'paused', resume: 'active', reduceOnly: 'reduce-only' };

export class TradingControl {
  readonly account: string;
  readonly exchange: string;
  readonly client: Client;
  private readonly queryTimeoutMs: number;
  private readonly emergencyTimeoutMs: number;

  constructor(client: Client, opts: ControlOptions) {
    const o = ControlOptions.parse(opts);
    this.account = o.account;
    this.exchange = o.exchange;
    this.queryTimeoutMs = o.queryTimeoutMs;
    this.emergencyTimeoutMs = o.emergencyTimeoutMs;
    // A Client is bound to one namespace; a cheap second one shares the connection and the data
    // converter (payload encryption).
    this.client =
      o.namespace && o.namespace !== client.options.namespace ? new Client({ connection: client.connection, namespace: o.namespace, dataConverter: client.options.dataConverter }) : client;
  }

  get namespace(): string {
    return this.client.options.namespace;
  }

  get portfolioWorkflowId(): string {
    return portfolioWorkflowId(this.account);
  }

  /** Running SymbolTrader workflows of this exchange, by visibility, sorted by symbol. */
  async listSymbols(): Promise<SymbolWorkflowSummary[]> {
    const prefix = symbolWorkflowId(this.exchange, '');
    const out = new Map<string, SymbolWorkflowSummary>();
    // Filtered by id prefix here rather than by the Exchange attribute in the query, so a
    // workflow started without search attributes is still found.
    for await (const wf of this.client.workflow.list({ query: `WorkflowType = '${SYMBOL_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'` })) {
      if (!wf.workflowId.startsWith(prefix)) continue;
      const symbol = wf.typedSearchAttributes.get(SymbolKey) ?? wf.workflowId.slice(prefix.length);
      const status = wf.typedSearchAttributes.get(TradingStatusKey);
      out.set(symbol, {
        symbol,
        workflowId: wf.workflowId,
        runId: wf.runId,
        tradingStatus: status as TradingStatus | undefined,
        mode: wf.typedSearchAttributes.get(ModeKey),
        startTime: wf.startTime,
      });
    }
    return [...out.values()].sort((a, b) => a.symbol.localeCompare(b.symbol));
  }

  /** The portfolio's view, or null when its workflow is not running. */
  async portfolioState(): Promise<PortfolioStateView | null> {
    try {
      return await this.withQueryDeadline(() => this.portfolio().query(portfolioStateQuery));
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  /** Symbols an operator may name: the running ones and those the portfolio owns. */
  async knownSymbols(): Promise<string[]> {
    const [running, portfolio] = await Promise.all([this.listSymbols(), this.portfolioState().catch(() => null)]);
    return [...new Set([...running.map((r) => r.symbol), ...(portfolio?.symbols ?? [])])].sort();
  }

  /**
   * The canonical symbol for what an operator typed: case-insensitive, and separators optional
   * (`btcusdt`, `BTC-USDT` and `btc/usdt` all mean BTC/USDT). Throws UnknownSymbolError.
   */
  async resolveSymbol(input: string): Promise<string> {
    return resolveSymbolAmong(input, await this.knownSymbols());
  }

  async symbolState(symbol: string): Promise<SymbolStateView> {
    const resolved = await this.resolveSymbol(symbol);
    return this.withQueryDeadline(() => this.client.workflow.getHandle(symbolWorkflowId(this.exchange, resolved)).query(stateQuery));
  }

  async status(): Promise<TradingStatusReport> {
    const [running, portfolio] = await Promise.all([
      this.listSymbols(),
      this.portfolioState().then(
        (p) => ({ p, error: p ? undefined : `portfolio workflow ${this.portfolioWorkflowId} is not running` }),
        (err: unknown) => ({ p: null, error: errorText(err) }),
      ),
    ]);
    const answers = await Promise.all(
      running.map(async (r) => {
        try {
          return { ok: true as const, view: await this.withQueryDeadline(() => this.client.workflow.getHandle(r.workflowId).query(stateQuery)) };
        } catch (err) {
          return { ok: false as const, failure: { symbol: r.symbol, workflowId: r.workflowId, error: errorText(err) } };
        }
      }),
    );
    return {
      account: this.account,
      exchange: this.exchange,
      portfolio: portfolio.p,
      portfolioError: portfolio.error,
      symbols: answers.flatMap((a) => (a.ok ? [a.view] : [])),
      unreachable: answers.flatMap((a) => (a.ok ? [] : [a.failure])),
    };
  }

  /** Open positions of every running symbol (from the workflows' own state). */
  async positions(): Promise<OpenPositionView[]> {
    const report = await this.status();
    return report.symbols.flatMap((s) => (s.position ? [s.position] : []));
  }

  /** No new entries (protective exits keep working); one symbol or, without one, every symbol. */
  pause(symbol: string | undefined, origin: MessageOrigin): Promise<StatusChangeResult> {
    return this.changeStatus('pause', symbol, origin);
  }

  resume(symbol: string | undefined, origin: MessageOrigin): Promise<StatusChangeResult> {
    return this.changeStatus('resume', symbol, origin);
  }

  reduceOnly(symbol: string | undefined, origin: MessageOrigin): Promise<StatusChangeResult> {
    return this.changeStatus('reduceOnly', symbol, origin);
  }

  /**
   * Switches one symbol to another strategy (a built-in, a strategy file's name or path, with
   * parameters) from its next candle. The portfolio has a trading worker load it first: a
   * strategy that cannot run (not found, does not type-check, parameters refused, wrong
   * timeframe) is refused with the reason and nothing changes (StrategyRefused). Audited and
   * alerted. Needs the portfolio workflow (it owns the symbols).
   */
  async setStrategy(symbol: string, ref: string, params: Record<string, unknown> | undefined, origin: MessageOrigin): Promise<StrategySwitchResult> {
    const o = Origin.parse(origin);
    // btcusdt, BTC-USDT: the symbol as /stop and `trader stop` accept it (an unknown one is an UnknownSymbolError).
    const resolved = await this.resolveSymbolQuickly(symbol);
    try {
      return await this.withTimeout(this.portfolio().executeUpdate(portfolioSetStrategyUpdate, { args: [{ symbol: resolved, ref, ...(params ? { params } : {}), ...o }] }));
    } catch (err) {
      throw new StrategyRefused(refusalText(err));
    }
  }

  /**
   * Closes every position at market and halts every symbol; returns what was closed. Through the
   * portfolio (which also trips the kill switch), or straight to each symbol if it is not running.
   * `updateId` makes a retried request (same confirmation) run once.
   */
  async emergency(origin: MessageOrigin, opts: { updateId?: string } = {}): Promise<EmergencyCloseResult[]> {
    const o = Origin.parse(origin);
    try {
      return await this.withTimeout(this.portfolio().executeUpdate(portfolioEmergencyUpdate, { args: [o], updateId: opts.updateId }));
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    const running = await this.listSymbols();
    const settled = await Promise.allSettled(
      running.map((r) =>
        this.withTimeout(
          this.client.workflow.getHandle(r.workflowId).executeUpdate(emergencyCloseUpdate, { args: [o], updateId: opts.updateId ? `${opts.updateId}/${r.symbol}` : undefined }),
        ),
      ),
    );
    const results: EmergencyCloseResult[] = [];
    const failures: { symbol: string; error: string }[] = [];
    settled.forEach((s, i) => (s.status === 'fulfilled' ? results.push(s.value) : failures.push({ symbol: running[i].symbol, error: errorText(s.reason) })));
    if (failures.length > 0) throw new EmergencyCloseIncomplete(results, failures);
    return results;
  }

  /**
   * Polls the symbols' state until each reports `status` or the time is up; returns what each
   * last reported ('unreachable' when its query failed). Signals are asynchronous: this is how
   * a caller confirms that a stop took effect.
   */
  async waitForStatus(symbols: string[], status: TradingStatus, timeoutMs: number, pollMs = 100): Promise<Record<string, TradingStatus | 'unreachable'>> {
    const deadline = Date.now() + timeoutMs;
    const seen: Record<string, TradingStatus | 'unreachable'> = {};
    for (;;) {
      await Promise.all(
        symbols.map(async (s) => {
          if (seen[s] === status) return;
          try {
            const view = await this.withQueryDeadline(() => this.client.workflow.getHandle(symbolWorkflowId(this.exchange, s)).query(stateQuery));
            seen[s] = view.tradingStatus;
          } catch {
            seen[s] = 'unreachable';
          }
        }),
      );
      if (symbols.every((s) => seen[s] === status) || Date.now() >= deadline) return seen;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  private async changeStatus(action: StatusAction, symbol: string | undefined, origin: MessageOrigin): Promise<StatusChangeResult> {
    const o = Origin.parse(origin);
    // Every symbol: nothing to resolve, so the signal goes first and the list is read while it spreads.
    const target = symbol === undefined ? undefined : await this.resolveSymbolQuickly(symbol);
    const portfolioSignal = { pause: portfolioPauseSignal, resume: portfolioResumeSignal, reduceOnly: portfolioReduceOnlySignal }[action];
    try {
      await this.portfolio().signal(portfolioSignal, { ...o, ...(target ? { symbol: target } : {}) });
      return { action, symbols: target ? [target] : await this.knownSymbols(), via: 'portfolio', failures: [] };
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    const symbolSignal = { pause: pauseSignal, resume: resumeSignal, reduceOnly: reduceOnlySignal }[action];
    const running = (await this.listSymbols()).filter((r) => !target || r.symbol === target);
    if (running.length === 0) {
      throw new Error(`nothing to ${action}: the portfolio workflow ${this.portfolioWorkflowId} is not running and neither is any symbol workflow${target ? ` for ${target}` : ''}`);
    }
    const settled = await Promise.allSettled(running.map((r) => this.client.workflow.getHandle(r.workflowId).signal(symbolSignal, o)));
    const failures = settled.flatMap((s, i) => (s.status === 'rejected' ? [{ symbol: running[i].symbol, error: errorText(s.reason) }] : []));
    if (failures.length === running.length) throw new Error(`${action} failed for every symbol: ${failures.map((f) => `${f.symbol} (${f.error})`).join(', ')}`);
    return { action, symbols: running.map((r) => r.symbol), via: 'direct', failures };
  }

  /**
   * resolveSymbol, but from the running workflows alone when the name is among them (a visibility
   * list, no workflow round trip): only a symbol that is not running needs the portfolio's list.
   */
  private async resolveSymbolQuickly(input: string): Promise<string> {
    const running = (await this.listSymbols()).map((r) => r.symbol);
    try {
      return resolveSymbolAmong(input, running);
    } catch {
      return this.resolveSymbol(input);
    }
  }

  private portfolio(): WorkflowHandle {
    return this.client.workflow.getHandle(this.portfolioWorkflowId);
  }

  private withQueryDeadline<T>(fn: () => Promise<T>): Promise<T> {
    return this.client.withDeadline(Date.now() + this.queryTimeoutMs, fn);
  }

  private withTimeout<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new EmergencyCloseTimeout(this.emergencyTimeoutMs)), this.emergencyTimeoutMs);
    });
    // The update keeps going after a timeout; its late failure must not become an unhandled rejection.
    p.catch(() => undefined);
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }
}

export interface StatusChangeConfirmation {
  result: StatusChangeResult;
  /** Symbols with a running workflow. */
  running: ReadonlySet<string>;
  /** Running symbols watched for the target status (those the change reached), and what each showed last. */
  watched: string[];
  seen: Record<string, TradingStatus | 'unreachable'>;
  target: TradingStatus;
}

/**
 * A status change as an operator surface runs it (`trader stop|resume|reduce-only`, the bot's
 * /stop, /resume, /reduceonly): send it, then wait up to `timeoutMs` until every running symbol
 * it reached reports the new status by query.
 */
export async function confirmStatusChange(control: TradingControl, action: StatusAction, symbol: string | undefined, origin: MessageOrigin, timeoutMs: number): Promise<StatusChangeConfirmation> {
  const result = await control[action](symbol, origin);
  const running = new Set((await control.listSymbols()).map((x) => x.symbol));
  const watched = result.symbols.filter((x) => running.has(x) && !result.failures.some((f) => f.symbol === x));
  const target = TARGET_STATUS[action];
  const seen = watched.length > 0 ? await control.waitForStatus(watched, target, timeoutMs) : {};
  return { result, running, watched, seen, target };
}

/** Separators and case do not matter: BTC/USDT, btc-usdt, btcusdt. */
export function resolveSymbolAmong(input: string, known: string[]): string {
  const want = input.trim().toUpperCase();
  if (known.includes(want)) return want;
  const compact = (s: string) => s.toUpperCase().replace(/[^A-Z0-9]/g, '');
  const matches = known.filter((k) => compact(k) === compact(want));
  if (matches.length === 1) return matches[0];
  throw new UnknownSymbolError(input.trim(), known);
}

function errorText(err: unknown): string {
  if (err instanceof WorkflowNotFoundError) return 'workflow not running';
  if (err instanceof Error) return err.message;
  return String(err);
}
