import fs from 'node:fs';
import path from 'node:path';

/**
 * The chart library every report inlines: TradingView Lightweight Charts, read from node_modules
 * when a report is written, so the HTML file needs no network to open. Its standalone build is one
 * script that defines `window.LightweightCharts` (candlesticks, series markers, line and area
 * series, canvas rendering). Licence: Apache-2.0, which asks for its attribution notice and a link
 * to tradingview.com; the chart's own logo link and the report's footer give both.
 */
export interface InlineScript {
  name: string;
  version: string;
  license: string;
  homepage: string;
  source: string;
}

let cached: InlineScript | undefined;

export function chartLibrary(): InlineScript {
  if (cached) return cached;
  const pkgFile = require.resolve('lightweight-charts/package.json');
  const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8')) as { version: string; license: string };
  const source = fs.readFileSync(path.join(path.dirname(pkgFile), 'dist', 'lightweight-charts.standalone.production.js'), 'utf8');
  cached = { name: 'TradingView Lightweight Charts', version: pkg.version, license: pkg.license, homepage: 'https://www.tradingview.com/', source };
  return cached;
}
