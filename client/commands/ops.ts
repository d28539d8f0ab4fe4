import { identityLabel } from '../../lib/strategy/run';
import os from 'node:os';
import { loadConfig, type AppConfig } from '../../infra/config';
import { createLogger } from '../../infra/logger';
import { openDatabase } from '../../infra/postgres';
import { Ledger } from '../../ledger';
import { closedTradesForReport, type LedgerTradeRow } from '../../ledger/report-queries';
import type { EquitySnapshot, Trade } from '../../ledger/types';
import { timeframeToMs } from '../../lib/candles';
import { equityHistory, type EquityPoint } from '../../lib/equity-history';
import { parseWhen } from '../candle-args';
import { confirmStatusChange, TradingControl, UnknownSymbolError, type TradingStatusReport } from '../../control/trading-control';
import { UsageError } from '../../infra/errors';
import { withTemporalClient } from '../connect';
import { readLastRun, REPLAY_DATABASE, type LastRun } from './up';

/**
 * The operator's commands against a running stack (`trader up` in another terminal, or the
 * cluster TEMPORAL_ADDRESS names): status, positions, stop, resume, reduce-only, emergency; and
 * `trades` and `equity`, which read the ledger and so work after `up` has exited.
 */

export function who(): string {
  return `cli:${os.userInfo().username}`;
}

function target(cfg: AppConfig): { run: LastRun | null; account: string; exchange: string } {
  const run = readLastRun(cfg.home);
  return {
    run,
    account: run?.account ?? `${cfg.mode}-${cfg.exchange.id}`,
    exchange: run?.exchange ?? cfg.exchange.id,
  };
}

export async function withControl<T>(cfg: AppConfig, fn: (control: TradingControl) => Promise<T>): Promise<T> {
  return withTemporalClient(cfg, async (client) => {
    try {
      const t = target(cfg);
      return await fn(new TradingControl(client, { account: t.account, exchange: t.exchange }));
    } catch (err) {
      if (err instanceof UnknownSymbolError) throw new UsageError(err.message);
      throw err;
    }
  });
}

/** The ledger of the last run (the replay's after `up --replay`), opened for `fn`. */
async function withLedger<T>(cfg: AppConfig, replay: boolean, fn: (ledger: Ledger) => Promise<T>): Promise<T> {
  const run = readLastRun(cfg.home);
  const database = replay || run?.database === REPLAY_DATABASE ? REPLAY_DATABASE : undefined;
  const db = await openDatabase({ databaseUrl: cfg.databaseUrl, home: cfg.home, port: cfg.postgresPort, log: createLogger({ level: 'warn' }), database });
  try {
    return await fn(new Ledger(db.sql));
  } finally {
    await db.close();
  }
}

function equityPoint(s: EquitySnapshot): EquityPoint {
  return {
    ts: s.ts.getTime(),
    equity: Number(s.equity),
    cash: Number(s.cash),
    exposure: Number(s.exposure),
    peakEquity: s.peakEquity === null ? null : Number(s.peakEquity),
    drawdown: s.drawdown === null ? null : Number(s.drawdown),
  };
}

const money = (x: number) => x.toFixed(2);
const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(2)} %`);
const utc = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';

function equityLine(p: EquityPoint): string {
  return `equity ${money(p.equity)} (cash ${money(p.cash)}, exposure ${money(p.exposure)}), drawdown ${pct(p.drawdown)}${p.peakEquity === null ? '' : ` from peak ${money(p.peakEquity)}`}; snapshot ${utc(p.ts)}`;
}

function printStatus(r: TradingStatusReport, snapshot: EquityPoint | null, ledgerError?: string): void {
  const ks = r.portfolio?.killSwitch;
  console.log(`account ${r.account} on ${r.exchange}; kill switch: ${ks ? (ks.tripped ? `TRIPPED (${ks.reason})` : 'armed') : `unknown (${r.portfolioError})`}`);
  if (snapshot) console.log(equityLine(snapshot));
  else if (r.portfolio?.equity != null) {
    console.log(`equity ${r.portfolio.equity.toFixed(2)}, peak ${r.portfolio.peakEquity?.toFixed(2)}, drawdown ${((r.portfolio.drawdown ?? 0) * 100).toFixed(2)} % (portfolio workflow; no equity snapshot in the ledger${ledgerError ? `: ${ledgerError}` : ''})`);
  }
  const rows = r.symbols.map((s) => [
    s.symbol,
    s.tradingStatus,
    s.position ? `long ${s.position.qty} @ ${s.position.entryPrice}` : 'flat',
    s.lastDecision ? `${s.lastDecision.action} (${s.lastDecision.reason})` : '-',
    s.realizedPnl.toFixed(2),
    String(s.tradesClosed),
  ]);
  table(['symbol', 'status', 'position', 'last decision', 'realized', 'trades'], rows);
  const b = r.symbols.find((x) => x.exchangeBreaker)?.exchangeBreaker;
  if (b) console.log(`exchange circuit breaker: ${b.state}${b.state === 'closed' ? '' : ` since ${new Date(b.since).toISOString()} after ${b.consecutiveFailures} failures (${b.lastFailure ?? '-'})`}`);
  for (const u of r.unreachable) console.log(`${u.symbol}: no answer (${u.error})`);
  if (r.symbols.length === 0 && r.unreachable.length === 0) console.log('no symbol workflow is running');
}

function table(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
}

export function tradeJson(t: Trade) {
  return {
    symbol: t.symbol,
    side: t.side,
    qty: Number(t.qty),
    entryTime: t.entryTime.getTime(),
    entryPrice: Number(t.entryPrice),
    exitTime: t.exitTime.getTime(),
    exitPrice: Number(t.exitPrice),
    fees: Number(t.fees),
    pnl: Number(t.pnl),
    exitReason: t.exitReason,
  };
}

/** A closed trade as `trader trades --json` prints it: the backtest's trade fields, in its order, then the exchange. */
function tradeJsonFromRow(t: LedgerTradeRow) {
  const { symbol, side, qty, entryTime, entryPrice, exitTime, exitPrice, fees, pnl, exitReason, entryOrderId, exitOrderId, stopPrice, targetPrice, entryTag, strategy, exchange } = t;
  return {
    symbol, side, qty, entryTime, entryPrice, exitTime, exitPrice, fees, pnl, exitReason, entryOrderId, exitOrderId, stopPrice, targetPrice,
    ...(entryTag !== undefined ? { entryTag } : {}),
    ...(strategy ? { strategy } : {}),
    exchange,
  };
}

/** `trader status`. */
export async function statusCommand(o: { json?: boolean }): Promise<void> {
  const cfg = loadConfig();
  const r = await withControl(cfg, (c) => c.status());
  // The account's equity as the portfolio last wrote it to the ledger; the workflows' view stands without it.
  let snapshot: EquityPoint | null = null;
  let ledgerError: string | undefined;
  try {
    const s = await withLedger(cfg, false, (l) => l.latestEquitySnapshot(r.account));
    snapshot = s && equityPoint(s);
  } catch (err) {
    ledgerError = (err as Error).message;
  }
  if (o.json) {
    console.log(JSON.stringify(r.symbols.map((s) => ({ ...s, killSwitch: r.portfolio?.killSwitch ?? null, equitySnapshot: snapshot })), null, 2));
  } else printStatus(r, snapshot, ledgerError);
}

/** `trader positions`. */
export async function positionsCommand(o: { json?: boolean }): Promise<void> {
  const cfg = loadConfig();
  const p = await withControl(cfg, (c) => c.positions());
  if (o.json) console.log(JSON.stringify(p, null, 2));
  else if (p.length === 0) console.log('no open positions');
  else table(['symbol', 'qty', 'entry', 'stop', 'target', 'mark', 'uPnL'], p.map((x) => [x.symbol, String(x.qty), String(x.entryPrice), String(x.stopPrice ?? '-'), String(x.targetPrice ?? '-'), String(x.markPrice ?? '-'), x.unrealizedPnl?.toFixed(2) ?? '-']));
}

/** `trader trades`. */
export async function tradesCommand(o: { json?: boolean; replay?: boolean }): Promise<void> {
  const cfg = loadConfig();
  const trades = (await withLedger(cfg, o.replay === true, (l) => closedTradesForReport(l.sql))).map(tradeJsonFromRow).sort((a, b) => a.exitTime - b.exitTime || a.symbol.localeCompare(b.symbol));
  if (o.json) console.log(JSON.stringify(trades, null, 2));
  else if (trades.length === 0) console.log('no closed trades');
  else {
    table(
      ['symbol', 'qty', 'entry time', 'entry', 'exit time', 'exit', 'fees', 'pnl', 'reason', 'strategy', 'tag'],
      trades.map((t) => [
        t.symbol, String(t.qty), new Date(t.entryTime).toISOString(), String(t.entryPrice), new Date(t.exitTime).toISOString(), String(t.exitPrice), t.fees.toFixed(4), t.pnl.toFixed(2), t.exitReason ?? '-',
        t.strategy ? identityLabel(t.strategy) : '-',
        t.entryTag ?? '-',
      ]),
    );
    console.log(`${trades.length} trades, total PnL ${trades.reduce((s, t) => s + t.pnl, 0).toFixed(2)}`);
  }
}

/** `trader equity`. */
export async function equityCommand(o: { since: string; every: string; json?: boolean }): Promise<void> {
  const cfg = loadConfig();
  const nowMs = Date.now();
  const since = parseWhen('--since', o.since, nowMs);
  let everyMs: number;
  try {
    everyMs = timeframeToMs(o.every);
  } catch (err) {
    throw new UsageError(`--every '${o.every}': ${(err as Error).message}`);
  }
  const { account } = target(cfg);
  const h = equityHistory((await withLedger(cfg, false, (l) => l.equityCurve({ since: new Date(since), account }))).map(equityPoint), everyMs);
  if (o.json) {
    console.log(JSON.stringify({ account, since, every: o.every, snapshots: h.snapshots, rows: h.rows, worstDrawdown: h.worstDrawdown }, null, 2));
    return;
  }
  if (!h.first || !h.last) {
    console.log(`no equity snapshot for ${account} since ${utc(since)} (the portfolio writes one per check while \`trader up\` runs)`);
    return;
  }
  table(
    ['time', 'equity', 'cash', 'exposure', 'drawdown'],
    h.rows.map((p) => [utc(p.ts), money(p.equity), money(p.cash), money(p.exposure), pct(p.drawdown)]),
  );
  const change = h.first.equity > 0 ? ` (${(((h.last.equity - h.first.equity) / h.first.equity) * 100).toFixed(2)} %)` : '';
  console.log(`${account}: ${h.snapshots} snapshots from ${utc(h.first.ts)} to ${utc(h.last.ts)}; equity ${money(h.first.equity)} -> ${money(h.last.equity)}${change}`);
  const w = h.worstDrawdown;
  console.log(w ? `worst drawdown ${pct(w.drawdown)} at ${utc(w.ts)} (equity ${money(w.equity)}, peak ${w.peakEquity === null ? '-' : money(w.peakEquity)})` : 'no drawdown in the period');
}

/** `trader stop | resume | reduce-only [SYMBOL]`: the status change, confirmed by the workflows within 15 s. */
export async function statusChangeCommand(action: 'pause' | 'resume' | 'reduceOnly', symbol: string | undefined, o: { reason?: string }): Promise<void> {
  const cfg = loadConfig();
  await withControl(cfg, async (c) => {
    const { result, seen, watched, target } = await confirmStatusChange(c, action, symbol, { by: who(), reason: o.reason }, 15_000);
    for (const s of result.symbols) console.log(`${s}: ${seen[s] ?? (watched.includes(s) ? 'unknown' : 'not running (the portfolio applies it when it starts)')}`);
    for (const f of result.failures) console.log(`${f.symbol}: not reached (${f.error})`);
    const late = watched.filter((s) => seen[s] !== target);
    if (late.length > 0) throw new Error(`not confirmed within 15 s for ${late.join(', ')} (the signal is recorded; check \`trader status\`)`);
  });
}

/** `trader emergency --yes`. */
export async function emergencyCommand(o: { yes?: boolean; reason?: string }): Promise<void> {
  if (!o.yes) throw new UsageError('emergency closes every position at market: add --yes to confirm');
  const cfg = loadConfig();
  const results = await withControl(cfg, (c) => c.emergency({ by: who(), reason: o.reason ?? 'emergency from the CLI' }));
  for (const r of results) {
    const closed = r.closed.map((p) => `closed ${p.qty} @ ${p.exitPrice} (pnl ${p.pnl.toFixed(2)})`).join(', ') || 'nothing open';
    console.log(`${r.symbol}: ${closed}; ${r.canceledOrders} orders canceled; now ${r.tradingStatus}`);
  }
}
