import { proxyLocalActivities, sleep } from '@temporalio/workflow';

/**
 * The SymbolTraderWorkflow's per-candle shape with nothing of ours in it (bench workflow-floor):
 * a durable timer, then one local activity that returns a result the size of a prepared candle.
 * What the worker spends per loop here is the SDK's share of a decision, below which no change to
 * our workflow or activities can bring a candle.
 */

export interface FloorActivities {
  readCandle(args: { symbol: string; after: number | null }): Promise<{ after: number; payload: string }>;
}

const { readCandle } = proxyLocalActivities<FloorActivities>({ startToCloseTimeout: '30 seconds' });

export async function candleLoopFloor(args: { symbol: string; candles: number; timerMs: number }): Promise<number> {
  let after: number | null = null;
  for (let i = 0; i < args.candles; i++) {
    await sleep(args.timerMs);
    after = (await readCandle({ symbol: args.symbol, after })).after;
  }
  return args.candles;
}
