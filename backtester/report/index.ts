export { renderReportHtml, duration, flattenConfig } from './render';
export { backtestReportData, chartCandles, type ReportData, type ReportTrade, type ReportChart, type ReportMonteCarlo } from './report-data';
export { chartLibrary } from './chart-library';
export { ledgerReportData, type LedgerCandles, type LedgerReportInput } from './from-ledger';
