import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fixtureCandleFile } from '../../testkit/fixtures';
import { embeddedStackEnv } from '../../testkit/trader-process';
// The parity test's key: every field of a trade, its orders, its entry tag and the strategy's identity.
import { tradeWithOrdersKey as key, type TradeWithOrders as TradeRow } from '../../testkit/replay-audit';

/**
 * A user's own strategy, as docs/strategies.md tells a user to write one: a TypeScript file in a
 * directory of their own, outside the project, importing only `durable-trader/strategy` (the
 * loader maps the name to the project's lib/strategy, and technicalindicators to the project's
 * copy). Run from that directory through the CLI: `trader backtest --strategy ./my.ts` and
 * `trader up --replay ... --strategy ./my.ts --exit-when-done` make the same trades, each
 * stamped with the file's name, version and source hash; a file that does not type-check or
 * exports no strategy is refused before anything runs; `trader strategy list` shows the
 * directory's strategies/NAME.ts.
 */

const run = promisify(execFile);
const REPO = path.resolve(__dirname, '..', '..');
const TRADER = path.join(REPO, 'bin', 'trader.js');
const ROWS = 1200;
const HOUR = 3_600_000;
const MAX_AGE = 10;

const sha12 = (text: string) => crypto.createHash('sha256').update(text).digest('hex').slice(0, 12);

/**
 * An SMA cross of its own (technicalindicators' SMA, through `ti`), with a time exit on
 * `ctx.position.ageCandles`: a position is closed once it has been held `maxAge` candles.
 * Plain windows only: the answer depends on exactly the last `slow` candles (warm-up exact).
 */
const MY_STRATEGY = `import { alignEnd, defineStrategy, z, ti } from 'durable-trader/strategy';

const Params = z.object({
  fast: z.number().int().min(2).max(50).default(8),
  slow: z.number().int().min(3).max(100).default(24),
  maxAge: z.number().int().min(1).max(500).default(${MAX_AGE}),
});
type Params = z.infer<typeof Params>;


export default defineStrategy<Params>({
  name: 'my-cross',
  version: '0.3.1',
  description: 'an SMA cross with an age exit, written outside the project',
  warmup: 101,
  params: Params,
  indicators(candles, p) {
    const values = candles.map((c) => c.close);
    return {
      fast: alignEnd(ti.SMA.calculate({ period: p.fast, values }), candles.length),
      slow: alignEnd(ti.SMA.calculate({ period: p.slow, values }), candles.length),
    };
  },
  decide({ candle, indicator, position, params: p }) {
    const fast = indicator('fast');
    const slow = indicator('slow');
    if (!Number.isFinite(fast) || !Number.isFinite(slow)) return { enter: false, exit: false, reason: 'warming up' };
    if (position) {
      if (position.ageCandles >= p.maxAge) return { exit: true, reason: 'held ' + position.ageCandles + ' candles' };
      return { exit: candle.close < slow, reason: 'close against the slow SMA' };
    }
    return { enter: fast > slow && candle.close > fast, tag: 'sma-' + p.fast + '-' + p.slow, target: null };
  },
});
`;

/** The directory's own strategies/NAME.ts, found by name and listed by `trader strategy list`. */
const LISTED_STRATEGY = `import { defineStrategy, z } from 'durable-trader/strategy';

export default defineStrategy({
  name: 'rsi-dip-here',
  version: '2.1.0',
  description: 'RSI dip, from the user directory',
  warmup: 0,
  params: z.object({ below: z.number().default(30), above: z.number().default(55) }),
  decide: ({ feature, params }) => ({ enter: feature('rsi_14') < params.below, exit: feature('rsi_14') > params.above }),
});
`;

/** warmup is a number and enter a boolean: two type errors, on line 5 and line 8. */
const BAD_TYPES = `import { defineStrategy, z } from 'durable-trader/strategy';

export default defineStrategy({
  name: 'bad-types',
  warmup: 'ten',
  version: '1.0.0',
  params: z.object({}),
  decide: () => ({ enter: 1 }),
});
`;

/** Type-checks, but exports a number rather than a strategy. */
const NO_STRATEGY = `export const answer = 42;\n`;

interface ExecFailure {
  code: number;
  stdout: string;
  stderr: string;
}

describe('a user strategy file outside the project: backtest == up --replay, identity, refusals, strategy list', function () {
  this.timeout(300_000); // `trader up --replay` through the real workflows and several `trader backtest` runs, as child processes
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let data: string;
  let mySource: string;

  const trader = (args: string[]) => run(process.execPath, [TRADER, ...args], { env, cwd: dir, maxBuffer: 64 * 1024 * 1024 });
  /** The command's failure (exit code, output); fails the test when it succeeds. */
  const refused = async (args: string[]): Promise<ExecFailure> => {
    try {
      const r = await trader(args);
      assert.fail(`trader ${args.join(' ')} should have failed:\n${r.stdout}\n${r.stderr}`);
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      return err as ExecFailure;
    }
  };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-user-strategy-'));
    fs.chmodSync(dir, 0o755); // the embedded PostgreSQL runs as `postgres` when we are root
    assert.ok(path.relative(REPO, dir).startsWith('..'), `the user's directory ${dir} should be outside the project`);
    // The first ROWS hourly BTC candles (the engine decides from candle 503 on).
    const lines = fs.readFileSync(fixtureCandleFile('fixture_BTC-USDT_1h.csv'), 'utf8').split('\n').slice(0, ROWS + 1);
    data = path.join(dir, 'fixture_BTC-USDT_1h.csv');
    fs.writeFileSync(data, lines.join('\n') + '\n');
    mySource = MY_STRATEGY;
    fs.writeFileSync(path.join(dir, 'my.ts'), mySource);
    fs.mkdirSync(path.join(dir, 'strategies'));
    fs.writeFileSync(path.join(dir, 'strategies', 'rsi-dip-here.ts'), LISTED_STRATEGY);
    fs.writeFileSync(path.join(dir, 'bad-types.ts'), BAD_TYPES);
    fs.writeFileSync(path.join(dir, 'no-strategy.ts'), NO_STRATEGY);
    env = await embeddedStackEnv(path.join(dir, 'home'));
    delete env.STRATEGY;
    delete env.STRATEGY_PARAMS;
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('backtest --strategy ./my.ts and up --replay --strategy ./my.ts make the same trades, each stamped with the file\'s name, version and source hash', async () => {
    const out = path.join(dir, 'out.json');
    const bt = await trader(['backtest', '--strategy', './my.ts', '--data', data, '--json', out]);
    assert.doesNotMatch(bt.stdout, /^model:/m, 'the strategy reads no model');
    const result = JSON.parse(fs.readFileSync(out, 'utf8')) as { trades: TradeRow[]; config: { strategyIdentity?: TradeRow['strategy'] } };
    const backtest = result.trades;

    const up = await trader(['up', '--replay', data, '--strategy', './my.ts', '--exit-when-done']);
    assert.match(up.stdout, /Replay finished/, `up --replay did not finish:\n${up.stdout}\n${up.stderr}`);
    const ledger = JSON.parse((await trader(['trades', '--json'])).stdout) as TradeRow[];

    assert.ok(backtest.length >= 10, `the strategy should trade on these ${ROWS} candles (got ${backtest.length} trades)`);
    // Its age exit works: no position outlives maxAge candles (its own exits fill at the next candle's open), some reach it.
    const held = backtest.filter((t) => t.exitReason === 'signal').map((t) => (t.exitTime - t.entryTime) / HOUR);
    assert.ok(held.every((h) => h <= MAX_AGE), `held at most ${MAX_AGE} candles: ${held.join(', ')}`);
    assert.ok(held.includes(MAX_AGE), `some positions leave by age: ${held.join(', ')}`);

    const identity = { name: 'my-cross', version: '0.3.1', source: sha12(mySource) };
    assert.equal(identity.source, crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, 'my.ts'))).digest('hex').slice(0, 12));
    const paramsHash = result.config.strategyIdentity?.params;
    assert.match(paramsHash ?? '', /^[0-9a-f]{12}$/, `the backtest's config carries the identity: ${JSON.stringify(result.config.strategyIdentity)}`);
    for (const [side, trades] of [['ledger', ledger], ['backtest', backtest]] as const) {
      for (const t of trades) {
        assert.deepEqual(t.strategy, { ...identity, params: paramsHash }, `${side}: the trade is stamped with the file's identity: ${JSON.stringify(t)}`);
        assert.equal(t.entryTag, 'sma-8-24', `${side}: the entry's tag: ${JSON.stringify(t)}`);
      }
    }
    assert.deepEqual(ledger.map(key).sort(), backtest.map(key).sort(), 'the ledger of the Temporal replay and the backtest disagree');
  });

  it('refuses a file that does not type-check, and one that exports no strategy, with exit code 2 naming the file and the reason', async () => {
    const bad = await refused(['backtest', '--strategy', './bad-types.ts', '--data', data]);
    assert.equal(bad.code, 2, `exit code 2 (bad input):\n${bad.stderr}`);
    assert.ok(bad.stderr.includes(path.join(dir, 'bad-types.ts')), `names the file:\n${bad.stderr}`);
    assert.match(bad.stderr, /does not type-check: line 5:\d+: Type 'string' is not assignable to type 'number'/, `says why, with the line:\n${bad.stderr}`);
    assert.match(bad.stderr, /line 8:\d+: Type 'number' is not assignable to type 'boolean/, `lists every error:\n${bad.stderr}`);

    const none = await refused(['backtest', '--strategy', './no-strategy.ts', '--data', data]);
    assert.equal(none.code, 2, `exit code 2 (bad input):\n${none.stderr}`);
    assert.ok(none.stderr.includes(path.join(dir, 'no-strategy.ts')), `names the file:\n${none.stderr}`);
    assert.match(none.stderr, /exports no strategy/, `says why:\n${none.stderr}`);

    for (const r of [bad, none]) assert.doesNotMatch(r.stdout, /^Backtest /m, 'nothing was backtested');
  });

  it("trader strategy list, run in the user's directory, lists its strategies/NAME.ts with version and source hash, and a backtest finds it by name", async () => {
    const file = path.join(dir, 'strategies', 'rsi-dip-here.ts');
    const source = sha12(fs.readFileSync(file, 'utf8'));
    const table = (await trader(['strategy', 'list'])).stdout;
    const row = table.split('\n').find((l) => l.startsWith('rsi-dip-here '));
    assert.ok(row, `listed:\n${table}`);
    assert.match(row, new RegExp(`^rsi-dip-here\\s+2\\.1\\.0\\s+${source}\\s+strategies/rsi-dip-here\\.ts\\s+RSI dip, from the user directory$`), `name, version, hash, where, description:\n${table}`);

    const listed = JSON.parse((await trader(['strategy', 'list', '--json'])).stdout) as Array<{ name: string; version: string | null; source: string | null; origin: string; error?: string }>;
    const mine = listed.find((s) => s.name === 'rsi-dip-here');
    assert.deepEqual(mine && { name: mine.name, version: mine.version, source: mine.source, origin: mine.origin, error: mine.error }, { name: 'rsi-dip-here', version: '2.1.0', source, origin: path.join('strategies', 'rsi-dip-here.ts'), error: undefined });
    // The files beside it that are not in strategies/ are not listed (a name does not reach them).
    assert.ok(!listed.some((s) => ['my-cross', 'bad-types', 'no-strategy'].includes(s.name)), `only strategies/ is listed: ${listed.map((s) => s.name).join(', ')}`);

    const out = path.join(dir, 'by-name.json');
    await trader(['backtest', '--strategy', 'rsi-dip-here', '--data', data, '--json', out]);
    const byName = JSON.parse(fs.readFileSync(out, 'utf8')) as { config: { strategyIdentity?: TradeRow['strategy'] } };
    assert.deepEqual(byName.config.strategyIdentity && { ...byName.config.strategyIdentity, params: '-' }, { name: 'rsi-dip-here', version: '2.1.0', source, params: '-' }, 'found by name: the file in strategies/');
  });
});
