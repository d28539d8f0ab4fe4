import type { HyperoptResult } from '../lib/contracts/hyperopt';
import type { HyperoptTrialRow } from '../ledger/hyperopt-store';
import { esc, pageHead } from './report/render';

/**
 * The HTML report of a hyperopt run (`trader hyperopt --report`): one self-contained page in the
 * backtest report's style, charts as inline SVG (no script, no network): loss over trials with the
 * best so far, the best trials' parameters, Optuna's parameter importances, the overfitting
 * guard's figures, and the best parameters' equity over the holdout.
 */

const pct = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : `${x > 0 ? '+' : ''}${(x * 100).toFixed(2)} %`);
const num = (x: number | null | undefined, d = 3) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));
const cls = (x: number | null | undefined) => (x === null || x === undefined || x === 0 ? '' : x > 0 ? 'pos' : 'neg');
/** A parameter as read: numbers to 5 significant digits. */
const show = (v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? String(Number(v.toPrecision(5))) : JSON.stringify(v));
const W = 1100;
const H = 300;
const PAD = 70;

function scale(lo: number, hi: number, from: number, to: number): (v: number) => number {
  const span = hi - lo || 1;
  return (v) => from + ((v - lo) / span) * (to - from);
}

function axes(minY: number, maxY: number, label: string, digits = 3): string {
  const y = scale(minY, maxY, H - PAD, 12);
  const ticks = [minY, (minY + maxY) / 2, maxY].map((v) => `<text x="${PAD - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11" fill="#6b7280">${esc(num(v, digits))}</text><line x1="${PAD}" x2="${W - 8}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e7eb"/>`);
  return `${ticks.join('')}<text x="${PAD}" y="${H - 8}" font-size="11" fill="#6b7280">${esc(label)}</text>`;
}

/** Each complete trial's loss (dots, failed trials as crosses on the axis) and the best so far (line). */
function lossChart(trials: HyperoptTrialRow[]): string {
  const done = trials.filter((t) => t.loss !== null);
  if (done.length === 0) return '<p class="muted">No complete trial.</p>';
  const n = Math.max(1, ...trials.map((t) => t.number));
  const losses = done.map((t) => t.loss!);
  const lo = Math.min(...losses);
  const hi = Math.max(...losses);
  const x = scale(0, n, PAD, W - 8);
  const y = scale(lo, hi, H - PAD, 12);
  let best = Infinity;
  const line: string[] = [];
  for (const t of [...done].sort((a, b) => a.number - b.number)) {
    best = Math.min(best, t.loss!);
    line.push(`${x(t.number).toFixed(1)},${y(best).toFixed(1)}`);
  }
  const dots = done.map((t) => `<circle cx="${x(t.number).toFixed(1)}" cy="${y(t.loss!).toFixed(1)}" r="3" fill="#2563eb" fill-opacity="0.6"><title>trial ${t.number}: loss ${num(t.loss)}</title></circle>`);
  const failed = trials.filter((t) => t.loss === null).map((t) => `<text x="${x(t.number).toFixed(1)}" y="${H - PAD + 4}" font-size="12" fill="#c62f3b" text-anchor="middle">x<title>trial ${t.number} failed: ${esc(t.error ?? '')}</title></text>`);
  return `<svg viewBox="0 0 ${W} ${H}" class="chart" role="img" aria-label="loss over trials">${axes(lo, hi, `trial number (0-${n}); lower loss is better`)}<polyline points="${line.join(' ')}" fill="none" stroke="#0a8f5a" stroke-width="2"/>${dots.join('')}${failed.join('')}</svg>`;
}

function equityChart(curve: Array<{ time: number; equity: number }>): string {
  if (curve.length < 2) return '<p class="muted">Too short a holdout for a curve.</p>';
  const eq = curve.map((p) => p.equity);
  const lo = Math.min(...eq);
  const hi = Math.max(...eq);
  const x = scale(curve[0].time, curve.at(-1)!.time, PAD, W - 8);
  const y = scale(lo, hi, H - PAD, 12);
  const pts = curve.map((p) => `${x(p.time).toFixed(1)},${y(p.equity).toFixed(1)}`).join(' ');
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  return `<svg viewBox="0 0 ${W} ${H}" class="chart" role="img" aria-label="holdout equity">${axes(lo, hi, `${day(curve[0].time)} to ${day(curve.at(-1)!.time)}, equity at each day's end`, 0)}<polyline points="${pts}" fill="none" stroke="#2563eb" stroke-width="2"/></svg>`;
}

function importanceBars(importance: Record<string, number>): string {
  const rows = Object.entries(importance).sort((a, b) => b[1] - a[1]);
  if (rows.length === 0) return '<p class="muted">Not computed (fewer than two complete trials, or one parameter).</p>';
  return `<table class="num">${rows.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${num(v, 3)}</td><td style="min-width:320px;text-align:left"><div style="background:#2563eb;height:10px;width:${Math.round(Math.max(0, Math.min(1, v)) * 300)}px"></div></td></tr>`).join('')}</table>`;
}

export function renderHyperoptReport(d: { result: HyperoptResult; config: Record<string, unknown>; trials: HyperoptTrialRow[] }): string {
  const r = d.result;
  const b = r.best;
  const g = r.guard;
  const names = b ? Object.keys(b.params) : [];
  const top = r.top.map((t) => `<tr><td>${t.number}</td><td>${num(t.loss, 4)}</td>${names.map((n) => `<td>${esc(show(t.params[n]))}</td>`).join('')}</tr>`).join('');
  const cards = b
    ? [
        ['best loss', num(b.loss, 4), ''],
        ['in-search return', pct(b.inSearch.totalReturn), cls(b.inSearch.totalReturn)],
        ['holdout return', b.holdout ? pct(b.holdout.totalReturn) : 'none', b.holdout ? cls(b.holdout.totalReturn) : ''],
        ['holdout Sharpe', b.holdout ? num(b.holdout.sharpe, 2) : 'none', ''],
        ['Deflated Sharpe', 'skipped' in g ? 'n/a' : num(g.dsr, 3), 'skipped' in g ? '' : g.dsr >= 0.95 ? 'pos' : 'neg'],
        ['PBO', 'skipped' in g ? 'n/a' : num(g.pbo, 3), 'skipped' in g ? '' : g.pbo < 0.5 ? 'pos' : 'neg'],
      ]
    : [];
  const guard =
    'skipped' in g
      ? `<p class="muted">Not computed: ${esc(g.skipped)}</p>`
      : `<table class="num guard">
<tr><td>Deflated Sharpe Ratio (Bailey &amp; Lopez de Prado, 2014)</td><td>${num(g.dsr)}</td><td style="text-align:left">the probability that the best trial's true Sharpe ratio is above zero once ${g.trials} trials' luck is accounted for; apply at 0.95 or more</td></tr>
<tr><td>Probabilistic Sharpe Ratio (no selection correction)</td><td>${num(g.psr)}</td><td></td></tr>
<tr><td>best trial's annualized Sharpe / the luck threshold</td><td>${num(g.sharpeAnnualized, 2)} / ${num(g.thresholdAnnualized, 2)}</td><td style="text-align:left">the expected best annualized Sharpe of ${g.trials} trials with no skill</td></tr>
<tr><td>Probability of Backtest Overfitting (Bailey, Borwein, Lopez de Prado &amp; Zhu, 2017)</td><td>${num(g.pbo)}</td><td style="text-align:left">CSCV over ${g.periods} days in ${g.partitions} partitions (${g.combinations} combinations): how often the in-sample winner ranks below the median out of sample</td></tr>
</table>`;
  const config = Object.entries(d.config)
    .filter(([k]) => k !== 'space')
    .map(([k, v]) => `<tr><td>${esc(k)}</td><td style="text-align:left">${esc(typeof v === 'object' ? JSON.stringify(v) : String(v))}</td></tr>`)
    .join('');
  return `${pageHead(`hyperopt ${r.runId}`, '  svg.chart { width: 100%; height: auto; display: block; }\n  table.guard td:last-child { white-space: normal; text-align: left; max-width: 560px; }\n')}
<body>
<main>
<h1>hyperopt ${esc(r.runId)} <span class="muted">${r.trials.complete} complete, ${r.trials.failed} failed of ${r.trials.asked}</span></h1>
<div class="cards">${cards.map(([k, v, c]) => `<div class="card"><b class="${c}">${esc(v)}</b><span>${esc(k)}</span></div>`).join('')}</div>
<section><h2>Loss over trials</h2>${lossChart(d.trials)}<div class="legend">Each trial's loss (dots; failed trials as x on the axis) and the best so far (line).</div></section>
<section><h2>Best parameters</h2>${b ? `<pre>${esc(JSON.stringify(b.params, null, 2))}</pre><p>In search: return ${pct(b.inSearch.totalReturn)}, Sharpe ${num(b.inSearch.sharpe, 2)}, max drawdown ${pct(-b.inSearch.maxDrawdown)}, ${b.inSearch.trades} trades; fold losses ${b.inSearch.foldLosses.map((x) => num(x)).join(', ')}.</p>` : '<p class="muted">No trial completed.</p>'}
<h3>The best trials</h3><div class="scroll"><table class="num"><thead><tr><th>trial</th><th>loss</th>${names.map((n) => `<th>${esc(n)}</th>`).join('')}</tr></thead><tbody>${top}</tbody></table></div></section>
<section><h2>Parameter importance</h2>${importanceBars(r.importance)}<div class="legend">Optuna's fANOVA importances over the complete trials: how much of the loss's variance each parameter explains.</div></section>
<section><h2>Overfitting guard</h2>${guard}</section>
<section><h2>Holdout</h2>${b?.holdout ? `<p>The last part of the data, never seen by the search, backtested with the best parameters: return ${pct(b.holdout.totalReturn)}, Sharpe ${num(b.holdout.sharpe, 2)}, Sortino ${num(b.holdout.sortino, 2)}, max drawdown ${pct(-b.holdout.maxDrawdown)}, ${b.holdout.trades} trades over ${b.holdout.days} days.</p>${equityChart(b.holdout.equity ?? [])}` : '<p class="muted">No holdout (--holdout 0).</p>'}</section>
<section><h2>Run</h2><table class="num">${config}</table></section>
<footer>durable-trader hyperopt report; Optuna study ${esc(r.study)} (open it with optuna-dashboard, docs/hyperopt.md).</footer>
</main>
</body>
</html>
`;
}
