import { bundleWorkflowCode, DefaultLogger, Worker } from '@temporalio/worker';
import { benchLog, cpuByProgram, cpuByThread, loadLine, machineLine, numberArg, openBenchStack, parseArgs, serverExperiment, SERVER_EXPERIMENT_ARGS, workerCpuByThread } from './helpers/trading-stack';
import { runBench } from './helpers/run';

/**
 * The Temporal TypeScript SDK's own CPU per candle on this machine: N workflows of the
 * SymbolTraderWorkflow's per-candle shape (a durable timer, then one local activity returning
 * ~900 bytes, the median size of a prepared candle) and nothing else: no engine, no exchange, no
 * PostgreSQL. Same dev server and worker defaults as bench decision-latency, so the difference
 * between the two is what our code costs per decision, and this figure is the floor under it.
 *
 *   npm run bench -- workflow-floor [--workflows 9] [--candles 100] [--timer-ms 1000] [--result-bytes 900] [--debug-mode]
 *     [--dynamic-config KEY=VALUE,...] [--sqlite-pragma PRAGMA=VALUE,...]   (dev server experiments, printed)
 *
 * --debug-mode (an experiment, printed): the SDK's debugMode, workflows in the worker's main
 * thread with no deadlock detector (no isolate execution timeout). Not a production setting: a
 * workflow stuck in a loop would then hang the whole worker instead of failing its task.
 */

const args = parseArgs(process.argv.slice(2), { workflows: 'value', candles: 'value', 'timer-ms': 'value', 'result-bytes': 'value', 'debug-mode': 'flag', ...SERVER_EXPERIMENT_ARGS });
const SERVER = serverExperiment(args);
const DEBUG_MODE = args.has('debug-mode');
const WORKFLOWS = numberArg(args, 'workflows', 9, (x) => Number.isInteger(x) && x >= 1);
const CANDLES = numberArg(args, 'candles', 100, (x) => Number.isInteger(x) && x >= 1);
const TIMER_MS = numberArg(args, 'timer-ms', 1000, (x) => Number.isInteger(x) && x >= 1);
const RESULT_BYTES = numberArg(args, 'result-bytes', 900, (x) => Number.isInteger(x) && x >= 0);

async function main(): Promise<void> {
  const loadBefore = loadLine();
  benchLog();
  const stack = await openBenchStack('floor', SERVER);
  try {
    const payload = 'x'.repeat(RESULT_BYTES);
    const taskQueue = `bench-floor-${process.pid}`;
    const threadsBefore = new Set(cpuByThread().keys());
    const worker = await Worker.create({
      connection: stack.env.nativeConnection,
      namespace: stack.env.namespace ?? 'default',
      taskQueue,
      workflowBundle: await bundleWorkflowCode({ workflowsPath: require.resolve('./helpers/floor-workflow'), logger: new DefaultLogger('WARN') }),
      debugMode: DEBUG_MODE,
      activities: { readCandle: async (a: { after: number | null }) => ({ after: (a.after ?? 0) + 1, payload }) },
    });
    const workerThreads = new Set([...cpuByThread().keys()].filter((t) => !threadsBefore.has(t)));
    const cpuBefore = cpuByProgram();
    const threadBefore = cpuByThread();
    let threadAfter = threadBefore;
    const t0 = Date.now();
    await worker.runUntil(async () => {
      const handles = await Promise.all(
        Array.from({ length: WORKFLOWS }, (_, i) => stack.env.client.workflow.start('candleLoopFloor', { taskQueue, workflowId: `floor-${i}`, args: [{ symbol: `S${i}`, candles: CANDLES, timerMs: TIMER_MS }] })),
      );
      await Promise.all(handles.map((h) => h.result()));
      // Before the worker shuts down: its workflow thread ends with it, and /proc forgets an ended thread's CPU.
      threadAfter = cpuByThread();
    });
    const wallS = (Date.now() - t0) / 1000;
    const cpuAfter = cpuByProgram();
    const loops = WORKFLOWS * CANDLES;
    const per = (s: number) => ((s * 1000) / loops).toFixed(2);
    const cpu = [...cpuAfter].map(([k, v]) => [k, v - (cpuBefore.get(k) ?? 0)] as const).filter(([, s]) => s >= 0.05).sort((a, b) => b[1] - a[1]);
    const workerMs = ((cpu.find(([k]) => k === 'worker (node)')?.[1] ?? NaN) * 1000) / loops;
    console.log(`workflow-floor bench: ${WORKFLOWS} workflows x ${CANDLES} candles, each a ${TIMER_MS} ms durable timer then one local activity returning ${RESULT_BYTES} B; Temporal dev server ${SERVER.description}, worker ${DEBUG_MODE ? 'defaults but debugMode (EXPERIMENT: workflows in the main thread, no deadlock detector)' : 'defaults'}`);
    console.log(`  machine: ${machineLine()}; load average before ${loadBefore}, after ${loadLine()}; wall ${wallS.toFixed(1)} s`);
    console.log(`  CPU per candle: ${cpu.map(([k, s]) => `${k} ${per(s)} ms`).join(', ')}`);
    console.log(`  worker CPU per candle, by thread: ${workerCpuByThread(threadBefore, threadAfter, workerThreads).filter(([, s]) => s > 0).map(([k, s]) => `${k} ${per(s)} ms`).join(', ')}`);
    const argv = process.argv.slice(2).join(' ');
    console.log(`  reproduce: npm run bench -- workflow-floor${argv ? ` ${argv}` : ''}`);
    console.log(JSON.stringify({ worker_cpu_ms_per_candle: Number(workerMs.toFixed(2)), loops }));
  } finally {
    await stack.close();
  }
}

runBench(main);
