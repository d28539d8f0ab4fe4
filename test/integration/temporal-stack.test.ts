import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createActivities } from '../../activities';
import { createLogger } from '../../infra/logger';
import { freshDatabase } from '../../testkit/db';
import { sharedDevServerEnv, timeSkippingEnv, withWorker, workflowBundle } from '../../testkit/temporal';
import type { SystemCheckResult } from '../../workflows/system-check';

const log = createLogger({ level: 'warn', name: 'test' });

describe('Temporal + PostgreSQL stack', function () {
  this.timeout(120_000); // starts a time-skipping test server, and the shared dev server and PostgreSQL on first use
  let db: Awaited<ReturnType<typeof freshDatabase>>;

  before(async () => {
    db = await freshDatabase();
    // Bundling fails on any Node import in workflow code; doing it first fails this suite early.
    await workflowBundle();
  });
  after(async () => db?.drop());

  async function runCheck(env: TestWorkflowEnvironment, pause: string): Promise<SystemCheckResult> {
    return withWorker(env, { activities: createActivities({ sql: db.sql, log }) }, (taskQueue) =>
      env.client.workflow.execute('systemCheckWorkflow', { taskQueue, workflowId: `system-check-${taskQueue}`, args: [{ pause }] }),
    );
  }

  async function auditRowsFor(workflowId: string): Promise<string[]> {
    const rows = await db.sql<{ event: string }[]>`select event from audit_log where actor = ${'workflow:' + workflowId} order by id`;
    return rows.map((r) => r.event);
  }

  describe('on the time-skipping test server', () => {
    let env: TestWorkflowEnvironment;
    before(async () => {
      env = await timeSkippingEnv();
    });
    after(async () => env?.teardown());

    it('runs a workflow whose durable timer of a week is skipped, writing to the real ledger', async () => {
      const started = Date.now();
      const res = await runCheck(env, '7 days');
      assert.ok(Date.now() - started < 60_000, 'a week of workflow time must be skipped');
      assert.notEqual(res.first.auditId, res.second.auditId);
      assert.ok(res.second.migrations > 0);
      assert.deepEqual(await auditRowsFor(res.workflowId), ['system_check.started', 'system_check.finished']);
    });
  });

  describe('on the dev server', () => {
    let env: TestWorkflowEnvironment;
    before(async () => {
      env = await sharedDevServerEnv();
    });
    after(async () => env?.teardown());

    it('runs the same workflow and records it in visibility with our search attributes registered', async () => {
      const res = await runCheck(env, '1 second');
      assert.deepEqual(await auditRowsFor(res.workflowId), ['system_check.started', 'system_check.finished']);
      const desc = await env.client.workflow.getHandle(res.workflowId).describe();
      assert.equal(desc.status.name, 'COMPLETED');
      const attrs = await env.client.connection.operatorService.listSearchAttributes({ namespace: 'default' });
      for (const name of ['Symbol', 'Exchange', 'Mode', 'TradingStatus']) {
        assert.ok(attrs.customAttributes?.[name] !== undefined, `search attribute ${name} missing`);
      }
    });
  });
});
