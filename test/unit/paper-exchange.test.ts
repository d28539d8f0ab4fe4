import { InMemoryPaperStateStore } from '../../lib/exchange/paper-state';
import { paperExchangeScenarios } from '../../testkit/paper-scenarios';

// The scenarios live in a helper so the PostgreSQL store runs the very same ones (test/integration/paper-state-pg.test.ts).
describe('paper exchange on recorded candles', () => {
  paperExchangeScenarios(() => new InMemoryPaperStateStore());
});
