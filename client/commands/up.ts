import type { AppConfig } from '../../infra/config';
import { onShutdownSignal, openStack, processLogger, startTradingWorker } from '../stack';

/**
 * `trader up` (what `npm start` runs): the embedded stack, the trading worker, and a system
 * check through Temporal. Later issues add the trading workflows per symbol.
 */
export async function runUp(cfg: AppConfig): Promise<void> {
  const log = processLogger(cfg);
  if (cfg.mode === 'live') {
    const banner = `LIVE TRADING: DRY_RUN=false, real orders on ${cfg.exchange.id}${cfg.exchange.sandbox ? ' (sandbox)' : ''} for ${cfg.symbols.join(', ')}`;
    console.error(`\n${'!'.repeat(banner.length)}\n${banner}\n${'!'.repeat(banner.length)}\n`);
    log.warn({ exchange: cfg.exchange.id, symbols: cfg.symbols, sandbox: cfg.exchange.sandbox }, banner);
  }
  const stopSignal = onShutdownSignal(log);
  const stack = await openStack(cfg, log);
  const { temporal, db } = stack;
  const worker = await startTradingWorker(stack, stopSignal);

  const check = await temporal.client.workflow.execute('systemCheckWorkflow', {
    taskQueue: cfg.temporal.taskQueue,
    workflowId: `system-check/${new Date().toISOString()}`,
    args: [{ pause: '1 second' }],
  });
  console.log(
    [
      '',
      `durable-trader is up (${cfg.mode} mode, ${cfg.exchange.id}, ${cfg.symbols.join(', ')}, ${cfg.timeframe})`,
      `  Temporal Web UI: ${temporal.uiUrl ?? '(external cluster: use its UI)'}   server ${temporal.address}, namespace ${temporal.namespace}`,
      `  PostgreSQL ledger: ${db.url}${db.embedded ? ' (embedded)' : ''}`,
      `  State under: ${cfg.home}`,
      `  System check: workflow ${check.workflowId} wrote audit rows ${check.first.auditId} and ${check.second.auditId} (PostgreSQL ${check.second.serverVersion})`,
      '  Ctrl-C stops everything cleanly; `npm start` again resumes.',
      '',
    ].join('\n'),
  );

  await worker.untilStopped();
}
