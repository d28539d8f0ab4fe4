import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { withTemporalHistoryClient } from '../connect';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { loadConfig } from '../../infra/config';

/**
 * `trader history export --out DIR [--query Q]`: every matching workflow's event history as
 * one JSON file (the format the Temporal CLI and UI export, which the SDK's replayer reads).
 * This is how test/histories/ was filled: record real runs, commit them, and CI replays them
 * against the current workflow code so a non-deterministic change fails before it ships.
 */

export interface ExportedHistory {
  workflowId: string;
  runId: string;
  type: string;
  file: string;
  events: number;
}

export async function exportHistories(client: Client, opts: { out: string; query?: string; limit?: number }): Promise<ExportedHistory[]> {
  fs.mkdirSync(opts.out, { recursive: true });
  const done: ExportedHistory[] = [];
  for await (const wf of client.workflow.list({ query: opts.query })) {
    if (opts.limit !== undefined && done.length >= opts.limit) break;
    const handle = client.workflow.getHandle(wf.workflowId, wf.runId);
    const history = await handle.fetchHistory();
    const file = path.join(opts.out, `${wf.workflowId.replace(/[^A-Za-z0-9._-]+/g, '_')}__${wf.runId}.json`);
    fs.writeFileSync(file, historyToJSON(history));
    done.push({ workflowId: wf.workflowId, runId: wf.runId, type: wf.type, file, events: history.events?.length ?? 0 });
  }
  // The replayer needs each history's original workflow id (client order ids derive from it);
  // file names flatten it, so an index keeps it (the format test/histories/index.json uses).
  const indexFile = path.join(opts.out, 'index.json');
  const previous = fs.existsSync(indexFile) ? (JSON.parse(fs.readFileSync(indexFile, 'utf8')) as Record<string, unknown>) : {};
  const entries = done.map((h) => [path.basename(h.file), { workflowId: h.workflowId, runId: h.runId, workflowType: h.type, events: h.events }]);
  fs.writeFileSync(indexFile, JSON.stringify({ ...previous, ...Object.fromEntries(entries) }, null, 2) + '\n');
  return done;
}

/** `trader history export --out DIR`; after `trader up` has exited too (withTemporalHistoryClient). */
export async function historyExportCommand(o: { out: string; query?: string; limit?: number }): Promise<void> {
  const cfg = loadConfig();
  await withTemporalHistoryClient(cfg, async (client) => {
    const out = await exportHistories(client, o);
    for (const h of out) console.log(`${h.type} ${h.workflowId} (${h.events} events) -> ${h.file}`);
    console.log(`${out.length} histories written to ${o.out}`);
  });
}
