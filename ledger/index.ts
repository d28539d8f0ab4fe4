/** The ledger's public surface: `import { Ledger, migrate, OrderIntent } from '../ledger'`. */
export { Ledger, marketCurrencies, type FillResult } from './ledger';
export { migrate, loadMigrations, MigrationChecksumMismatch, MIGRATIONS_DIR, type MigrateResult } from '../infra/migrate';
export { transaction, isConnectionLoss } from '../infra/transaction';
export { rebuildPositions, type FillForRebuild } from './rebuild';
export * from './errors';
export * from './types';
