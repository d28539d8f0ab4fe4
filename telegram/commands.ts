import { z } from 'zod';
import { confirmStatusChange, type StatusAction } from '../control/trading-control';
import type { BotServices, CommandRun, CommandSpec } from './command';
import { command } from './command';
import type { EmergencyClose } from './emergency';
import { formatBalance, formatMetrics, formatPositions, formatProfit, formatStatus, formatStatusChange, formatTrades, helpText, noLedger, profitWindows } from './format';
import type { RetrainNow } from './retrain';

/**
 * The command table: each command's usage, its arguments (validated with zod before anything
 * runs; a bad one gets the usage line and reaches nothing) and its handler. The order is the
 * order of /help and of the command menu Telegram shows.
 */

const SymbolArg = z.string().regex(/^[A-Za-z0-9]{1,20}([/:_-][A-Za-z0-9]{1,20}){0,2}$/, 'expected a symbol such as BTC/USDT');
const NoArgs = z.array(z.string()).max(0, 'takes no arguments');
const OptionalSymbol = z
  .array(SymbolArg)
  .max(1, 'takes at most one symbol')
  .transform((a) => a[0] as string | undefined);
const TradesCount = z
  .array(z.string().regex(/^\d+$/, 'expected a number of trades').transform(Number).pipe(z.number().int().min(1, 'at least 1').max(50, 'at most 50')))
  .max(1, 'takes at most one number')
  .transform((a) => a[0] ?? 10);
const ConfirmCode = z
  .array(z.string().regex(/^\d{6}$/, 'the confirmation code has 6 digits'))
  .max(1, 'takes at most the confirmation code')
  .transform((a) => a[0] as string | undefined);
// /strategy SYMBOL NAME [JSON params]: the params are the rest of the message, one JSON object.
const StrategySwitch = z
  .array(z.string())
  .min(2, 'needs a symbol and a strategy, e.g. /strategy BTC/USDT breakout')
  .transform((a, ctx) => {
    const symbol = SymbolArg.safeParse(a[0]);
    if (!symbol.success) {
      ctx.addIssue({ code: 'custom', message: 'expected a symbol such as BTC/USDT' });
      return z.NEVER;
    }
    if (!/^[A-Za-z0-9._/-]{1,200}$/.test(a[1])) {
      ctx.addIssue({ code: 'custom', message: 'expected a strategy name (or a path on the worker)' });
      return z.NEVER;
    }
    let params: Record<string, unknown> | undefined;
    if (a.length > 2) {
      try {
        const parsed: unknown = JSON.parse(a.slice(2).join(' '));
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
        params = parsed as Record<string, unknown>;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'the parameters after the name must be one JSON object, e.g. {"period":20}' });
        return z.NEVER;
      }
    }
    return { symbol: symbol.data, ref: a[1], params };
  });
const ConfirmWord = z
  .array(z.string().regex(/^confirm$/i, "the only argument is 'confirm'"))
  .max(1, "takes at most the word 'confirm'")
  .transform((a) => a.length > 0);

export interface CommandTableOptions {
  emergency: EmergencyClose;
  retrain: RetrainNow;
  /** How long /stop, /resume, /reduceonly wait to see the new status by query. */
  confirmStatusMs: number;
  /** For /help's "one command per N s". */
  rateLimitMs: number;
}

export function commandTable(s: BotServices, o: CommandTableOptions): Record<string, CommandSpec> {
  const { control, cfg, ledger } = s;

  const changeStatus = async (c: CommandRun, action: StatusAction, symbol: string | undefined): Promise<void> => {
    const confirmed = await confirmStatusChange(control, action, symbol, c.origin, o.confirmStatusMs);
    await c.reply(formatStatusChange({ oneSymbol: symbol !== undefined, ...confirmed, waitedMs: o.confirmStatusMs }));
  };

  const withLedger = async (c: CommandRun, what: string, fn: (l: NonNullable<BotServices['ledger']>) => Promise<void>): Promise<void> => {
    if (!ledger) return c.reply(noLedger(what));
    return fn(ledger);
  };

  const help = (c: CommandRun) =>
    c.reply(helpText({ exchange: control.exchange, mode: cfg.mode, adminId: c.caller.id, commands: Object.values(table), exampleSymbol: cfg.symbols[0] ?? 'BTC/USDT', rateLimitMs: o.rateLimitMs }));

  const table: Record<string, CommandSpec> = {
    start: command({ usage: '/start', description: 'what this bot does', args: NoArgs, run: help }),
    help: command({ usage: '/help', description: 'the commands', args: NoArgs, run: help }),
    status: command({
      usage: '/status',
      description: 'kill switch, equity and every symbol: status, position, last decision',
      args: NoArgs,
      run: async (c) => c.reply(formatStatus(await control.status(), cfg.mode)),
    }),
    stop: command({
      usage: '/stop [SYMBOL]',
      description: 'pause new entries (all symbols, or one); protective exits keep working',
      args: OptionalSymbol,
      audited: true,
      run: (c, symbol) => changeStatus(c, 'pause', symbol),
    }),
    resume: command({ usage: '/resume [SYMBOL]', description: 'allow entries again (all symbols re-arms a tripped kill switch)', args: OptionalSymbol, audited: true, run: (c, symbol) => changeStatus(c, 'resume', symbol) }),
    reduceonly: command({ usage: '/reduceonly [SYMBOL]', description: 'exits only: positions may be closed, never increased', args: OptionalSymbol, audited: true, run: (c, symbol) => changeStatus(c, 'reduceOnly', symbol) }),
    strategy: command({
      usage: '/strategy SYMBOL NAME [{json params}]',
      description: 'switch a symbol to another strategy from its next candle (checked on the worker first)',
      args: StrategySwitch,
      audited: true,
      run: async (c, a) => {
        try {
          const r = await control.setStrategy(a.symbol, a.ref, a.params, c.origin);
          await c.reply(`${r.symbol}: strategy ${r.strategy} from the next candle.`);
        } catch (err) {
          await c.reply(`Refused, nothing changed: ${err instanceof Error ? err.message : String(err)}`);
        }
      },
    }),
    positions: command({ usage: '/positions', description: 'open positions with stops, targets and unrealized PnL', args: NoArgs, run: async (c) => c.reply(formatPositions(await control.positions())) }),
    metrics: command({
      usage: '/metrics',
      description: 'PnL, win rate, drawdown, exposure',
      args: NoArgs,
      run: async (c) => c.reply(formatMetrics(await control.status(), cfg.mode, ledger ? (await ledger.tradeSummary()).all : null, s.alerts ? s.alerts.stats() : null)),
    }),
    trades: command({
      usage: '/trades [N]',
      description: 'the last N closed trades (default 10, at most 50)',
      args: TradesCount,
      run: (c, n) => withLedger(c, '/trades', async (l) => c.reply(formatTrades(await l.lastTrades(n)))),
    }),
    profit: command({
      usage: '/profit',
      description: 'realized PnL (today, 7 days, all), win rate, best and worst trade',
      args: NoArgs,
      run: (c) => withLedger(c, '/profit', async (l) => c.reply(formatProfit(await l.tradeSummary(profitWindows(s.now()))))),
    }),
    balance: command({
      usage: '/balance',
      description: 'equity, cash, exposure and drawdown (the last ledger snapshot), against the initial capital',
      args: NoArgs,
      run: async (c) => {
        const snapshot = ledger ? await ledger.latestEquitySnapshot(control.account) : undefined;
        // No ledger snapshot: the portfolio workflow's equity (from the ledger's trades) is the answer.
        const portfolio = snapshot ? null : await control.portfolioState().catch(() => null);
        return c.reply(formatBalance(cfg.risk.initialCapital, snapshot, portfolio));
      },
    }),
    retrain: command({
      usage: '/retrain [confirm]',
      description: 'retrain the models now: runs the retrain schedule once (asks for confirmation)',
      args: ConfirmWord,
      audited: true,
      confirms: (confirm) => confirm,
      run: (c, confirm) => (confirm ? o.retrain.confirmByCommand(c) : o.retrain.request(c)),
    }),
    emergency: command({
      usage: '/emergency',
      description: 'close EVERY position at market and halt (asks for confirmation)',
      args: ConfirmCode,
      audited: true,
      confirms: (code) => code !== undefined,
      run: (c, code) => (code === undefined ? o.emergency.request(c) : o.emergency.confirmByCode(c, code)),
    }),
  };
  return table;
}
