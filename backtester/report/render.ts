import fs from 'node:fs';
import path from 'node:path';
import type { BreakdownRow, MonteCarloPart } from '../../lib/backtest';
import { chartLibrary } from './chart-library';
import type { ReportData } from './report-data';
import { PROJECT_ROOT } from '../../infra/project-root';

/**
 * One self-contained HTML file: the tables rendered here, the charts drawn in the browser by
 * page.js with the inlined chart library from the data embedded as JSON. No external URL is
 * loaded (no CDN, no web fonts, an empty inline favicon), so it opens offline, from a mail
 * attachment or a CI artifact alike.
 */

// A plain browser script, not compiled: read from the project (the build holds no copy).
const PAGE_SCRIPT = path.join(PROJECT_ROOT, 'backtester', 'report', 'page.js');

export const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
const iso = (ms: number | null | undefined) => (ms === null || ms === undefined || !Number.isFinite(ms) ? '-' : new Date(ms).toISOString().slice(0, 16).replace('T', ' '));
const pct = (x: number | null | undefined, d = 2) => {
  if (x === null || x === undefined || !Number.isFinite(x)) return 'n/a';
  const text = (x * 100).toFixed(d);
  return Number(text) === 0 ? `${(0).toFixed(d)} %` : `${x > 0 ? '+' : ''}${text} %`;
};
/** A share (win rate, exposure): no sign. */
const rate = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : `${(x * 100).toFixed(1)} %`);
/** A drawdown is shown as the fall it is: -12.3 %. */
const fall = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x === 0 ? '0.00 %' : `-${(x * 100).toFixed(2)} %`);
const num = (x: number | null | undefined, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));
const price = (x: number | null | undefined) => (x === null || x === undefined ? '-' : Math.abs(x) >= 1000 ? x.toFixed(2) : Number(x.toPrecision(6)).toString());
const cls = (x: number | null | undefined) => (x === null || x === undefined || x === 0 ? '' : x > 0 ? 'pos' : 'neg');

/** A duration in days, hours and minutes (freqtrade prints 1 day, 2:30:00). */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return 'n/a';
  const m = Math.round(ms / 60_000);
  const d = Math.floor(m / 1440);
  const h = Math.floor((m % 1440) / 60);
  const mm = m % 60;
  return `${d > 0 ? `${d} d ` : ''}${h} h${mm ? ` ${mm} min` : ''}`;
}

function table(id: string, head: string[] | null, rows: string[][], opts: { numeric?: boolean } = {}): string {
  const thead = head ? `<thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead>` : '';
  const body = rows.map((r) => `<tr>${r.join('')}</tr>`).join('\n');
  return `<table id="${id}"${opts.numeric === false ? '' : ' class="num"'}>${thead}<tbody>\n${body}\n</tbody></table>`;
}

const td = (text: string, klass = '') => `<td${klass ? ` class="${klass}"` : ''}>${esc(text)}</td>`;

function breakdownTable(id: string, title: string, rows: BreakdownRow[]): string {
  if (rows.length === 0) return `<p class="muted">No closed trades.</p>`;
  return table(
    id,
    [title, 'trades', 'wins', 'losses', 'win rate', 'avg return', 'total PnL', 'avg duration'],
    rows.map((r) => [td(r.key), td(String(r.trades)), td(String(r.wins)), td(String(r.losses)), td(rate(r.winRate)), td(pct(r.averageReturn), cls(r.averageReturn)), td(num(r.totalPnl), cls(r.totalPnl)), td(duration(r.averageDurationMs))]),
  );
}

function monthlyTable(d: ReportData): string {
  const months = d.statistics.monthlyReturns;
  if (months.length === 0) return '<p class="muted">No equity curve.</p>';
  const years = [...new Set(months.map((m) => m.period.slice(0, 4)))];
  const names = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const byKey = new Map(months.map((m) => [m.period, m.return]));
  const rows = years.map((y) => {
    let year = 1;
    const cells = names.map((_, i) => {
      const r = byKey.get(`${y}-${String(i + 1).padStart(2, '0')}`);
      if (r === undefined) return td('');
      year *= 1 + r;
      return td(pct(r), cls(r));
    });
    return [td(y), ...cells, td(pct(year - 1), cls(year - 1))];
  });
  return table('monthly-returns', ['year', ...names, 'year'], rows);
}

function monteCarloSection(d: ReportData): string {
  const mc = d.monteCarlo;
  if (!mc) return '';
  const show = (what: 'finalReturn' | 'maxDrawdown') => (what === 'maxDrawdown' ? fall : pct);
  const row = (name: string, p: MonteCarloPart | null, what: 'finalReturn' | 'maxDrawdown') =>
    p ? [td(name), td(show(what)(p[what].p5)), td(show(what)(p[what].p50)), td(show(what)(p[what].p95))] : [td(name), td('-'), td('-'), td('-')];
  return `<section><h2>Monte Carlo</h2>
<p>${mc.runs} runs over ${mc.trades} closed trades (seed ${mc.seed}). Each trade is its return on the realized account equity when it closed; <b>shuffle</b> replays the same trades in random orders (the final return cannot change, the drawdown can), <b>bootstrap</b> draws as many trades with replacement. Drawdowns here are over trade closes only. The backtest's own order: final ${pct(mc.actual.finalReturn)}, max drawdown ${fall(mc.actual.maxDrawdown)}.</p>
${table('monte-carlo', ['', '5 %', '50 %', '95 %'], [
  row('bootstrap: final return', mc.bootstrap, 'finalReturn'),
  row('bootstrap: max drawdown', mc.bootstrap, 'maxDrawdown'),
  row('shuffle: final return', mc.shuffle, 'finalReturn'),
  row('shuffle: max drawdown', mc.shuffle, 'maxDrawdown'),
])}
<p>Probability of ending below the initial capital: bootstrap ${rate(mc.bootstrap?.probabilityOfLoss ?? null)}, shuffle ${rate(mc.shuffle?.probabilityOfLoss ?? null)}.</p></section>`;
}

/** `risk.stopLossPct` = 0.02, ... for every leaf of the configuration. */
export function flattenConfig(value: unknown, prefix = ''): Array<[string, string]> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [[prefix || '(value)', Array.isArray(value) ? value.map((v) => (typeof v === 'object' ? JSON.stringify(v) : String(v))).join(', ') : String(value)]];
  const out: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === undefined) continue;
    out.push(...flattenConfig(v, prefix ? `${prefix}.${k}` : k));
  }
  return out;
}

/** The report pages' style (the backtest report, the hyperopt report). */
const PAGE_STYLE = `  :root { --pos: #0a8f5a; --neg: #c62f3b; --muted: #6b7280; --line: #e5e7eb; }
  body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, Ubuntu, sans-serif; color: #111827; margin: 0; background: #f9fafb; }
  main { max-width: 1200px; margin: 0 auto; padding: 24px; }
  h1 { margin: 0 0 4px; font-size: 24px; } h2 { margin: 32px 0 8px; font-size: 18px; border-bottom: 1px solid var(--line); padding-bottom: 4px; } h3 { margin: 20px 0 6px; font-size: 15px; }
  .muted { color: var(--muted); font-weight: normal; } .pos { color: var(--pos); } .neg { color: var(--neg); }
  .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(140px, 1fr)); gap: 10px; margin: 16px 0; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; } .card b { display: block; font-size: 19px; white-space: nowrap; } .card span { color: var(--muted); font-size: 12px; }
  .chart { background: #fff; border: 1px solid var(--line); border-radius: 8px; height: 360px; } .chart.small { height: 180px; } .legend { font-size: 12px; color: var(--muted); margin: 4px 0; }
  table { border-collapse: collapse; background: #fff; margin: 8px 0; font-size: 13px; } th, td { border: 1px solid var(--line); padding: 3px 8px; white-space: nowrap; } th { background: #f3f4f6; text-align: left; }
  table.num td { text-align: right; } table.num td:first-child { text-align: left; }
  .scroll { overflow-x: auto; max-height: 600px; overflow-y: auto; } .two { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; } @media (max-width: 800px) { .two { grid-template-columns: 1fr; } }
  footer { color: var(--muted); font-size: 12px; margin: 40px 0 0; }
`;

/** A report page's head, up to `</head>`: no external resource (an empty inline favicon), the shared style and the page's own rules. */
export function pageHead(title: string, extraStyle = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${esc(title)} - durable-trader</title>
<style>
${PAGE_STYLE}${extraStyle}</style>
</head>`;
}

/** Embedded JSON must not be able to close its script element. */
const scriptSafe = (text: string) => text.replace(/<\/script/gi, '<\\/script');

export function renderReportHtml(d: ReportData): string {
  const m = d.metrics;
  const s = d.statistics;
  const lib = chartLibrary();
  const page = fs.readFileSync(PAGE_SCRIPT, 'utf8');
  const cards: Array<[string, string, string]> = [
    ['total return', pct(m.totalReturn), cls(m.totalReturn)],
    ['market change', pct(s.marketChange), cls(s.marketChange)],
    ['CAGR', pct(s.cagr), cls(s.cagr)],
    ['max drawdown', fall(m.maxDrawdown), m.maxDrawdown > 0 ? 'neg' : ''],
    ['Sharpe', num(m.sharpe), cls(m.sharpe)],
    ['trades', String(m.trades), ''],
    ['win rate', rate(m.winRate), ''],
    ['profit factor', num(m.profitFactor), ''],
  ];
  const metricRows: Array<[string, string, string?]> = [
    ['initial equity', num(m.initialEquity)],
    ['final equity', num(m.finalEquity)],
    ['total return', pct(m.totalReturn), cls(m.totalReturn)],
    ['buy and hold (market change)', pct(m.buyAndHoldReturn), cls(m.buyAndHoldReturn)],
    ['CAGR (calendar)', pct(s.cagr), cls(s.cagr)],
    ['annualized return (per bar)', pct(m.annualizedReturn), cls(m.annualizedReturn)],
    ['max drawdown', fall(m.maxDrawdown)],
    ['Sharpe', num(m.sharpe)],
    ['Sortino', num(m.sortino)],
    ['Calmar', num(m.calmar)],
    ['profit factor', num(m.profitFactor)],
    ['expectancy per trade', num(m.expectancy, 4)],
    ['fees paid', num(m.totalFees)],
    ['exposure', rate(m.exposure)],
    ['bars', String(m.bars)],
  ];
  const tradeRows: Array<[string, string, string?]> = [
    ['trades (wins / losses)', `${m.trades} (${m.wins} / ${m.losses})`],
    ['win rate', rate(m.winRate)],
    ['max consecutive wins', String(s.maxConsecutiveWins)],
    ['max consecutive losses', String(s.maxConsecutiveLosses)],
    ['average duration', duration(s.averageDurationMs)],
    ['average duration, winners', duration(s.winnersAverageDurationMs)],
    ['average duration, losers', duration(s.losersAverageDurationMs)],
    ['best trade', s.bestTrade ? `${pct(s.bestTrade.return)} ${s.bestTrade.symbol} ${iso(s.bestTrade.exitTime)}` : 'n/a', cls(s.bestTrade?.return)],
    ['worst trade', s.worstTrade ? `${pct(s.worstTrade.return)} ${s.worstTrade.symbol} ${iso(s.worstTrade.exitTime)}` : 'n/a', cls(s.worstTrade?.return)],
    ['best day', s.bestDay ? `${pct(s.bestDay.return)} ${s.bestDay.day}` : 'n/a', cls(s.bestDay?.return)],
    ['worst day', s.worstDay ? `${pct(s.worstDay.return)} ${s.worstDay.day}` : 'n/a', cls(s.worstDay?.return)],
    ['days winning / losing / flat', `${s.winningDays} / ${s.losingDays} / ${s.flatDays}`],
  ];
  const kv = (id: string, rows: Array<[string, string, string?]>) => table(id, null, rows.map(([k, v, c]) => [td(k), td(v, c ?? '')]));

  const trades = table(
    'trades',
    ['#', 'symbol', 'entry (UTC)', 'entry', 'exit (UTC)', 'exit', 'qty', 'stop', 'target', 'return', 'PnL', 'fees', 'duration', 'exit reason'],
    d.trades.map((t, i) => {
      const ret = t.qty * t.entryPrice > 0 ? t.pnl / (t.qty * t.entryPrice) : 0;
      return [td(String(i + 1)), td(t.symbol), td(iso(t.entryTime)), td(price(t.entryPrice)), td(iso(t.exitTime)), td(price(t.exitPrice)), td(String(t.qty)), td(price(t.stopPrice)), td(price(t.targetPrice)), td(pct(ret), cls(ret)), td(num(t.pnl), cls(t.pnl)), td(num(t.fees, 4)), td(duration(t.exitTime - t.entryTime)), td(t.exitReason ?? '-')];
    }),
  );
  const open = d.openPositions.length === 0
    ? '<p class="muted">None.</p>'
    : table('open-positions', ['symbol', 'entry (UTC)', 'entry', 'qty', 'stop', 'target', 'mark', 'unrealized PnL'], d.openPositions.map((p) => [td(p.symbol), td(iso(p.entryTime)), td(price(p.entryPrice)), td(String(p.qty)), td(price(p.stopPrice)), td(price(p.targetPrice)), td(price(p.markPrice)), td(num(p.unrealizedPnl), cls(p.unrealizedPnl))]));
  const charts = d.charts.map((c, i) => `<h3>${esc(c.symbol)} ${esc(c.timeframe)} <span class="muted">${c.candles.length} candles; ${d.trades.filter((t) => t.symbol === c.symbol).length} trades</span></h3><div class="chart candles" data-chart="${i}"></div>`).join('\n');

  return `${pageHead(d.title)}
<body>
<main>
<h1>${esc(d.title)}</h1>
<div class="muted">${esc(d.subtitle)} &middot; generated ${esc(d.generatedAt.slice(0, 19).replace('T', ' '))} UTC by durable-trader</div>
${d.notes.map((n) => `<p class="muted">${esc(n)}</p>`).join('\n')}
<div class="cards">${cards.map(([k, v, c]) => `<div class="card"><span>${esc(k)}</span><b class="${c}">${esc(v)}</b></div>`).join('')}</div>

<section><h2>Equity</h2>
<div class="legend">Equity <span style="color:#2563eb">&#9632;</span> (right scale)${d.buyAndHold ? ' against an equal-weight buy and hold of the same capital in the same symbols <span style="color:#9ca3af">&#9632;</span> (left scale)' : ''}; below, the drawdown from the running peak.</div>
<div id="equity-chart" class="chart"></div>
<div id="drawdown-chart" class="chart small"></div></section>

<section><h2>Candles, entries and exits</h2>
<div class="legend">Entries <span class="pos">&#9650;</span> below the decision candle, exits <span class="neg">&#9660;</span> above the candle they filled in (green when the trade made money); the stop (red) and target (green) placed at entry, dashed, while the position was open.</div>
${charts || '<p class="muted">No candles to draw.</p>'}</section>

<section><h2>Metrics</h2><div class="two"><div>${kv('metrics', metricRows)}</div><div>${kv('trade-statistics', tradeRows)}</div></div></section>
${monteCarloSection(d)}
<section><h2>Monthly returns</h2><div class="scroll">${monthlyTable(d)}</div></section>
<section><h2>Per symbol</h2>${breakdownTable('per-symbol', 'symbol', s.bySymbol)}</section>
<section><h2>Per exit reason</h2>${breakdownTable('per-exit-reason', 'exit reason', s.byExitReason)}</section>
<section><h2>Trades (${d.trades.length})</h2><div class="scroll">${trades}</div></section>
<section><h2>Open positions at the end</h2>${open}</section>
<section><h2>Configuration</h2>${table('configuration', ['setting', 'value'], flattenConfig(d.config).map(([k, v]) => [td(k), td(v)]), { numeric: false })}</section>
<footer>Charts: ${esc(lib.name)} ${esc(lib.version)} (${esc(lib.license)}), Copyright TradingView, Inc., <a href="${esc(lib.homepage)}">tradingview.com</a>, inlined in this file. Times are UTC.</footer>
</main>
<script id="report-data" type="application/json">${JSON.stringify(d).replace(/</g, '\\u003c')}</script>
<script>${scriptSafe(lib.source)}</script>
<script>${scriptSafe(page)}</script>
</body>
</html>
`;
}
