/** The ledger's public surface: `import { Ledger, migrate, OrderIntent } from '../ledger'`. */
export { Ledger, marketCurrencies, type FillResult } from './ledger';
export { migrate, loadMigrations, MigrationChecksumMismatch, MIGRATIONS_DIR, type MigrateResult } from '../infra/migrate';
export { transaction, isConnectionLoss } from '../infra/transaction';
export { CandleStore, CandleStoreError, CandleSelection, type CandleConflict, type CandleGap, type CandleRange, type CandleUpsertResult, type SeriesCoverage } from './candle-store';
export { rebuildPositions, type FillForRebuild } from './rebuild';
export * from './errors';
export * from './types';
