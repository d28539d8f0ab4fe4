import path from 'node:path';
import type { Worker } from '@temporalio/worker';
import { AlertDispatcher } from '../activities/alerts';
import { buildTradingDeps } from '../workers/trading-deps';
import { confirmStatusChange, TradingControl, type StatusAction } from '../control/trading-control';
import { portfolioInput, startPortfolio, symbolTraderInputs } from '../control/start-trading';
import { parseConfig } from '../infra/config';
import { FEATURE_SCHEMA } from '../lib/features';
import type { TradingStatus } from '../lib/contracts/trading';
import { startTelegramBot, type TelegramBot } from '../telegram/bot';
import { BotApiStandin } from '../testkit/bot-api-standin';
import { fmtSummary, summarize } from './helpers/history';
import { syntheticSymbols, writeSyntheticCandleFiles } from '../testkit/candles';
import { benchLog, defaultConfig, loadLine, machineLine, numberArg, openBenchStack, parseArgs, tradingWorker } from './helpers/trading-stack';
import { runBench } from './helpers/run';

/**
 * Kill-switch latency: how long from an operator's command to the moment the LAST symbol is seen
 * (by the state query) in the status the command asked for, while every symbol is busy replaying.
 *
 * Setup, as `trader up --replay` runs it: a real Temporal dev server and embedded PostgreSQL, the
 * trading worker with the real activities (replay venue, paper exchange and ledger on PostgreSQL),
 * the PortfolioWorkflow started by control/start-trading (it starts one SymbolTraderWorkflow per
 * symbol). N synthetic symbols of 1m candles replay at --speed (default 60: a candle a second per
 * symbol, the pace of the reported two-symbol 1h replay at speed 3600; `max` replays as fast as
 * the machine goes).
 *
 * Commands, each timed from the call to the last symbol confirmed:
 *   stop / resume, CLI path:       confirmStatusChange (what `trader stop|resume` runs) through TradingControl
 *   stop / resume, Telegram path:  "/stop" sent to the REAL telegraf bot through the Bot API stand-in,
 *                                  timed to the bot's reply that confirms every symbol
 *   emergency close, CLI path:     TradingControl.emergency (what `trader emergency --yes` runs), then
 *                                  queries until every symbol reports `halted`
 *   emergency close, Telegram:     "/emergency" and its confirmation code, timed from the code to the
 *                                  bot's report, then queries until every symbol reports `halted`
 * Each command is followed by its undo (resume, or resume of every symbol after an emergency,
 * which also re-arms the kill switch). Goal: p99 < 1 s for each.
 *
 *   npm run bench -- kill-switch [--symbols 9] [--rounds 20] [--speed 60|max]
 */

const args = parseArgs(process.argv.slice(2), { symbols: 'value', rounds: 'value', speed: 'value' });
const SYMBOLS = numberArg(args, 'symbols', 9, (x) => Number.isInteger(x) && x >= 1 && x <= 50);
const ROUNDS = numberArg(args, 'rounds', 20, (x) => Number.isInteger(x) && x >= 1);
const speedArg = args.get('speed');
const SPEED: number | 'max' = speedArg === 'max' ? 'max' : numberArg(args, 'speed', 60);
const GOAL_MS = 1_000;
const TOKEN = '123456789:KILL_switch_bench_token_abcdefgh';
const ADMIN = 4242;

type Op = 'stop' | 'resume' | 'emergency' | 'resume after emergency';
type Path = 'cli' | 'telegram';
const samples = new Map<string, number[]>();
const record = (op: Op, path: Path, ms: number) => {
  const k = `${op} (${path})`;
  samples.set(k, [...(samples.get(k) ?? []), ms]);
};

async function main(): Promise<void> {
  const log = benchLog();
  const loadBefore = loadLine();
  const stack = await openBenchStack('kill-switch');
  const api = await BotApiStandin.start({ token: TOKEN });
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  let bot: TelegramBot | undefined;
  try {
    const symbols = syntheticSymbols(SYMBOLS);
    // Long enough that no symbol runs out of candles while the commands go on (1 candle/s at speed 60).
    const rounds = FEATURE_SCHEMA.warmup + (SPEED === 'max' ? 60_000 : Math.ceil(ROUNDS * 8 * 6 * (typeof SPEED === 'number' ? SPEED / 60 : 1)) + 600);
    const files = writeSyntheticCandleFiles(path.join(stack.dir, 'candles'), symbols, { timeframe: '1m', count: rounds });
    const db = await stack.freshDatabase();
    const cfg = defaultConfig();
    const account = `bench-kill-${process.pid}`;
    const { deps: trading, ledger } = buildTradingDeps({ sql: db.sql, log, market: { replay: { files } }, account, exchangeLabel: 'replay', initialCapital: cfg.risk.initialCapital, strategy: 'rules', client: stack.env.client });
    const taskQueue = `bench-kill-${process.pid}`;
    worker = await tradingWorker(stack, { taskQueue, sql: db.sql, log, trading, prepare: 'local' });
    running = worker.run();
    const exchange = 'replay';
    const plan = { account, exchange, mode: 'replay' as const, symbols, timeframe: '1m', strategy: 'rules' as const, speed: SPEED };
    const cfgQ = { ...cfg, temporal: { ...cfg.temporal, taskQueue } };
    await startPortfolio(stack.env.client, portfolioInput(cfgQ, plan, symbolTraderInputs(cfg, plan)));
    const control = new TradingControl(stack.env.client, { account, exchange });

    const botCfg = parseConfig({ TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_ADMIN_IDS: String(ADMIN), TELEGRAM_API_ROOT: api.apiRoot, SYMBOLS: symbols.join(',') });
    const alerts = new AlertDispatcher({ log });
    bot = await startTelegramBot({ cfg: botCfg, control, log, ledger, alerts, rateLimitMs: 0, confirmStatusMs: 15_000 });
    await api.waitForPolling();

    // Every symbol running and deciding before the clock starts.
    await waitUntil('every symbol to decide', async () => {
      const r = await control.status();
      return r.symbols.length === SYMBOLS && r.symbols.every((s) => s.decisions > 0);
    }, 300_000);
    console.log(
      `kill-switch bench: ${SYMBOLS} symbols replaying 1m synthetic candles at speed ${SPEED}${typeof SPEED === 'number' ? ` (${(SPEED / 60).toFixed(2)} candles/s each)` : ''}, ` +
        `portfolio + symbol workflows on a Temporal dev server, paper exchange + ledger in PostgreSQL; ${ROUNDS} rounds`,
    );
    console.log(`  machine: ${machineLine()}; load average before ${loadBefore}`);

    const allIn = async (status: TradingStatus): Promise<void> => {
      const seen = await control.waitForStatus(symbols, status, 60_000, 20);
      const late = symbols.filter((s) => seen[s] !== status);
      if (late.length > 0) throw new Error(`not ${status} after 60 s: ${late.map((s) => `${s} ${seen[s]}`).join(', ')}`);
    };
    const cli = async (action: StatusAction, op: Op): Promise<void> => {
      const t = performance.now();
      const c = await confirmStatusChange(control, action, undefined, { by: 'bench', reason: `kill-switch bench ${op}` }, 15_000);
      const ms = performance.now() - t;
      const late = c.watched.filter((s) => c.seen[s] !== c.target);
      if (late.length > 0 || c.watched.length !== SYMBOLS) throw new Error(`${op} (cli): not confirmed for ${late.join(', ')} (${c.watched.length} watched)`);
      record(op, 'cli', ms);
    };
    let since = 0;
    const tg = async (text: string, op: Op, done: RegExp): Promise<number> => {
      since = api.messagesTo(ADMIN).length;
      const t = performance.now();
      api.sendText(ADMIN, text);
      const reply = await api.waitForMessage(ADMIN, (m) => done.test(m.text) || /⚠️|failed|not confirmed|still/.test(m.text), { since, timeoutMs: 60_000 });
      const ms = performance.now() - t;
      if (!done.test(reply.text)) throw new Error(`${op} (telegram): ${reply.text}`);
      return ms;
    };
    const tgStatus = async (command: '/stop' | '/resume', op: Op): Promise<void> => {
      const ms = await tg(command, op, new RegExp(`All symbols (paused|resumed): (${symbols.map((s) => s.replace('/', '\\/')).join('|')})(, |\\.)`));
      const reply = api.messagesTo(ADMIN).at(-1)!.text;
      const confirmed = symbols.filter((s) => reply.includes(s));
      if (confirmed.length !== SYMBOLS) throw new Error(`${op} (telegram): the reply confirms ${confirmed.length} of ${SYMBOLS} symbols: ${reply}`);
      record(op, 'telegram', ms);
    };

    for (let round = 1; round <= ROUNDS; round++) {
      await cli('pause', 'stop');
      await cli('resume', 'resume');
      await tgStatus('/stop', 'stop');
      await tgStatus('/resume', 'resume');

      let t = performance.now();
      await control.emergency({ by: 'bench', reason: 'kill-switch bench emergency' });
      await allIn('halted');
      record('emergency', 'cli', performance.now() - t);
      await cli('resume', 'resume after emergency');

      since = api.messagesTo(ADMIN).length;
      api.sendText(ADMIN, '/emergency');
      const prompt = await api.waitForMessage(ADMIN, /Confirm within/, { since, timeoutMs: 60_000 });
      const code = /\/emergency (\d{6})/.exec(prompt.text)![1];
      t = performance.now();
      await tg(`/emergency ${code}`, 'emergency', /Emergency close done/);
      await allIn('halted');
      record('emergency', 'telegram', performance.now() - t);
      await tgStatus('/resume', 'resume after emergency');
      if (round % 5 === 0 || round === ROUNDS) console.log(`  round ${round}/${ROUNDS} done (load ${loadLine()})`);
    }

    const rows = [...samples.entries()].map(([k, xs]) => ({ k, s: summarize(xs) }));
    for (const { k, s } of rows) console.log(`  ${k.padEnd(34)} ${fmtSummary(s)}  ${s.p99 < GOAL_MS ? 'met' : 'MISSED'}`);
    const stops = [...(samples.get('stop (cli)') ?? []), ...(samples.get('stop (telegram)') ?? [])];
    const all = [...samples.values()].flat();
    const worst = rows.reduce((a, r) => (r.s.p99 > a.s.p99 ? r : a));
    const stop = summarize(stops);
    console.log(`  stop, both paths: ${fmtSummary(stop)}; worst p99 of any command: ${worst.k} ${worst.s.p99.toFixed(1)} ms (goal < ${GOAL_MS} ms: ${worst.s.p99 < GOAL_MS ? 'met' : 'MISSED'})`);
    console.log(`  every command: ${fmtSummary(summarize(all))}`);
    console.log(`  load average after ${loadLine()}`);
    console.log(`  reproduce: npm run bench -- kill-switch${process.argv.length > 2 ? ` ${process.argv.slice(2).join(' ')}` : ''}`);
    const round1 = (x: number) => Math.round(x * 10) / 10;
    console.log(
      JSON.stringify({
        p50_ms: round1(stop.p50),
        p99_ms: round1(stop.p99),
        ...Object.fromEntries(rows.map(({ k, s }) => [k.replace(/[^a-z]+/g, '_').replace(/_$/, '') + '_p99_ms', round1(s.p99)])),
        worst_p99_ms: round1(worst.s.p99),
      }),
    );
  } finally {
    await bot?.stop().catch(() => undefined);
    await api.stop().catch(() => undefined);
    worker?.shutdown();
    await running?.catch(() => undefined);
    await stack.close();
  }
}

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

runBench(main);
