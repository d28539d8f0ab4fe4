/** Market data for the candle store: downloads from the exchange, and the live loop's writes. */
export { downloadCandles, candlesWithDownload, recentCandles, closedUntil, DownloadInterrupted, type DownloadDeps, type DownloadOptions, type DownloadProgress, type DownloadReport, type DownloadRequest } from './download';
export { createMarketDataExchange, marketDataExchangeFor, checkMarkets, pageSizeOf, type MarketDataExchangeConfig } from './exchange';
export { candleStoreSink } from './live-candles';
export { snapshotTrainingWindow, checkStoreSource } from './training-window';
