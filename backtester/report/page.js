/*
 * Draws the report's charts in the browser from the JSON embedded in the page, with the inlined
 * TradingView Lightweight Charts (window.LightweightCharts). Plain ES2020 with no imports: the
 * report is one file. `document.body.dataset.charts` becomes "drawn" when every chart is drawn, or
 * "failed" (with the error on the console and on the page).
 */
(function () {
  'use strict';
  var LWC = window.LightweightCharts;
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var sec = function (ms) { return Math.floor(ms / 1000); };
  var base = {
    autoSize: true,
    layout: { background: { color: '#ffffff' }, textColor: '#374151', fontFamily: 'system-ui, sans-serif' },
    grid: { vertLines: { color: '#f3f4f6' }, horzLines: { color: '#f3f4f6' } },
    // A year of hourly candles must fit the width: far below the library's default 0.5 px per bar.
    timeScale: { timeVisible: true, secondsVisible: false, borderColor: '#e5e7eb', minBarSpacing: 0.001 },
    rightPriceScale: { borderColor: '#e5e7eb' },
  };

  /** The chart library refuses times that do not increase: of points sharing a time (a second), the last one stays. */
  function increasing(points) {
    var out = [];
    points.forEach(function (p) {
      if (out.length > 0 && out[out.length - 1].time >= p.time) {
        if (out[out.length - 1].time === p.time) out[out.length - 1] = p;
        return;
      }
      out.push(p);
    });
    return out;
  }

  function line(chart, points, color, opts) {
    var s = chart.addSeries(LWC.LineSeries, Object.assign({ color: color, lineWidth: 2, priceLineVisible: false, lastValueVisible: true }, opts || {}));
    s.setData(increasing(points));
    return s;
  }

  function drawEquity() {
    // Two price scales: the strategy's equity on the right, buy and hold on the left. On one
    // scale a cautious strategy's curve is a flat line beside a market that doubled.
    var chart = LWC.createChart(document.getElementById('equity-chart'), Object.assign({}, base, { leftPriceScale: { visible: !!data.buyAndHold, borderColor: '#e5e7eb' } }));
    line(chart, data.equity.map(function (p) { return { time: sec(p.time), value: p.equity }; }), '#2563eb', { title: 'equity' });
    if (data.buyAndHold) line(chart, data.buyAndHold.map(function (p) { return { time: sec(p.time), value: p.equity }; }), '#9ca3af', { title: 'buy and hold', lineWidth: 1, priceScaleId: 'left' });
    chart.timeScale().fitContent();
    var dd = LWC.createChart(document.getElementById('drawdown-chart'), base);
    var area = dd.addSeries(LWC.AreaSeries, { lineColor: '#c62f3b', topColor: 'rgba(198,47,59,0.05)', bottomColor: 'rgba(198,47,59,0.35)', lineWidth: 1, priceLineVisible: false, priceFormat: { type: 'custom', minMove: 0.01, formatter: function (v) { return v.toFixed(2) + ' %'; } }, invertFilledArea: true });
    area.setData(increasing(data.drawdown.map(function (p) { return { time: sec(p.time), value: -100 * p.drawdown }; })));
    dd.timeScale().fitContent();
  }

  /** The open time of the candle containing `ms` (times stamped at a close belong to the candle that closed). */
  function barOf(c, ms) {
    var t0 = c.candles[0][0];
    var tf = c.timeframeMs;
    return t0 + Math.floor((ms - 1 - t0) / tf) * tf;
  }

  function drawCandles(el, c) {
    var chart = LWC.createChart(el, base);
    var candles = chart.addSeries(LWC.CandlestickSeries, { upColor: '#0a8f5a', downColor: '#c62f3b', wickUpColor: '#0a8f5a', wickDownColor: '#c62f3b', borderVisible: false, priceLineVisible: false });
    candles.setData(increasing(c.candles.map(function (k) { return { time: sec(k[0]), open: k[1], high: k[2], low: k[3], close: k[4] }; })));
    var first = c.candles[0][0];
    var last = c.candles[c.candles.length - 1][0];
    var trades = data.trades.filter(function (t) { return t.symbol === c.symbol; });
    var markers = [];
    // Labels help on a few trades and bury the candles under many (zoom in to read the trade table's reasons).
    var labels = trades.length <= 60;
    // Stops and targets as dashed segments while a position is open. The chart library draws a
    // line series through every point (whitespace does not break it), so the stretch between two
    // trades is drawn through transparent points; consecutive trades alternate between two series
    // so that one series' points never share a time.
    var levels = [[], [], [], []];
    var clear = 'rgba(0,0,0,0)';
    trades.forEach(function (t, k) {
      var decision = barOf(c, t.entryTime);
      var exitBar = barOf(c, t.exitTime);
      if (decision >= first && decision <= last) markers.push({ time: sec(decision), position: 'belowBar', shape: 'arrowUp', color: '#0a8f5a', text: labels ? 'buy' : undefined });
      if (exitBar >= first && exitBar <= last) markers.push({ time: sec(exitBar), position: 'aboveBar', shape: 'arrowDown', color: t.pnl > 0 ? '#0a8f5a' : '#c62f3b', text: labels ? (t.exitReason || 'exit').replace('_', ' ') : undefined });
      var from = Math.max(first, Math.min(decision + c.timeframeMs, exitBar));
      var to = Math.min(last, exitBar);
      if (to < from) return;
      [[t.stopPrice, 0, '#c62f3b'], [t.targetPrice, 2, '#0a8f5a']].forEach(function (lv) {
        if (lv[0] === null || lv[0] === undefined) return;
        var series = levels[lv[1] + (k % 2)];
        var before = from - c.timeframeMs;
        if (before >= first && (series.length === 0 || sec(before) > series[series.length - 1].time)) series.push({ time: sec(before), value: lv[0], color: clear });
        series.push({ time: sec(from), value: lv[0], color: lv[2] });
        if (to > from) series.push({ time: sec(to), value: lv[0], color: lv[2] });
        if (to + c.timeframeMs <= last) series.push({ time: sec(to + c.timeframeMs), value: lv[0], color: clear });
      });
    });
    levels.forEach(function (points, i) {
      if (points.length === 0) return;
      line(chart, points, i < 2 ? '#c62f3b' : '#0a8f5a', { lineWidth: 1, lineStyle: LWC.LineStyle.Dashed, lastValueVisible: false, crosshairMarkerVisible: false });
    });
    markers.sort(function (a, b) { return a.time - b.time; });
    LWC.createSeriesMarkers(candles, markers);
    chart.timeScale().fitContent();
  }

  try {
    if (!LWC) throw new Error('the chart library did not load');
    drawEquity();
    Array.prototype.forEach.call(document.querySelectorAll('.chart.candles'), function (el) {
      var c = data.charts[Number(el.getAttribute('data-chart'))];
      if (c && c.candles.length > 0) drawCandles(el, c);
    });
    document.body.dataset.charts = 'drawn';
  } catch (err) {
    document.body.dataset.charts = 'failed';
    var p = document.createElement('p');
    p.className = 'neg';
    p.textContent = 'The charts could not be drawn: ' + (err && err.message ? err.message : String(err));
    document.querySelector('main').insertBefore(p, document.querySelector('main').children[2]);
    console.error(err);
  }
})();
