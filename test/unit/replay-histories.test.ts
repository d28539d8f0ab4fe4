import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import crypto from 'node:crypto';
import { defaultPayloadConverter, type DataConverter, type Payload } from '@temporalio/common';
import { Worker, type ReplayResult } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { installTemporalRuntime, temporalDataConverter } from '../../infra/temporal';
import { AesGcmPayloadCodec, isEncrypted, parseEncryptionKeys, payloadKeyId } from '../../infra/payload-codec';
import { RECORDED_WITH_KEYS } from '../histories/encryption';
import { testLog } from '../../testkit/db';
import { workflowBundle } from '../../testkit/temporal';
import { INDEX, type HistoryIndexEntry } from '../histories/record';

/**
 * Workflow code stays replayable: every history recorded from a real run (test/histories/*.json,
 * see README.md there) replays against the current code of workflows/ with the SDK's replayer. A
 * change that would break running workflows (another activity, a command added or removed, commands
 * in another order) fails here before it ships; such changes go behind patched(). The tampered
 * copies prove the check can fail. (The SDK does not compare a timer's length: a changed replay
 * speed or candle delay is not a determinism break, and a tampered duration would not fail.)
 */

type History = ReturnType<typeof historyFromJSON>;

const DIR = path.join(__dirname, '..', 'histories');
const files = fs.existsSync(DIR) ? fs.readdirSync(DIR).filter((f) => f.endsWith('.json') && f !== INDEX).sort() : [];
const index: Record<string, HistoryIndexEntry> = fs.existsSync(path.join(DIR, INDEX)) ? JSON.parse(fs.readFileSync(path.join(DIR, INDEX), 'utf8')) : {};
const load = (file: string): History => historyFromJSON(JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8')));
/** Replayed under the workflow id it ran with: the workflow derives its client order ids from it. */
const recorded = (file: string) => ({ workflowId: index[file].workflowId, history: load(file) });

async function replay(histories: Array<{ workflowId: string; history: History }>, dataConverter?: DataConverter): Promise<ReplayResult[]> {
  const results: ReplayResult[] = [];
  // workflowsPath is what workers run (require.resolve('../../workflows')); the bundle of it is shared with the other suites.
  for await (const r of Worker.runReplayHistories({ workflowBundle: await workflowBundle(), replayName: 'test/histories', dataConverter }, histories)) results.push(r);
  return results;
}

/**
 * Histories recorded with payload encryption (key RECORDED_WITH_KEYS, see record.ts) replay as a
 * worker would after a key rotation: with a newer key B listed last (the one that now encrypts)
 * and the recording's key still listed to decrypt.
 */
const encryptedFiles = files.filter((f) => index[f]?.encryptionKeyId);
const plainFiles = files.filter((f) => !index[f]?.encryptionKeyId);
const rotatedKeys = `${RECORDED_WITH_KEYS},rotated-b:${crypto.randomBytes(32).toString('base64')}`;

/** Every payload of a history, wherever it sits (inputs, results, markers, signals, updates, search attributes). */
function payloadsOf(history: History): Array<{ where: string; payload: Payload }> {
  const out: Array<{ where: string; payload: Payload }> = [];
  const walk = (v: unknown, where: string): void => {
    if (!v || typeof v !== 'object') return;
    if (v instanceof Uint8Array) return;
    const o = v as Record<string, unknown>;
    if (o.metadata && typeof o.metadata === 'object' && 'data' in o) {
      out.push({ where, payload: o as Payload });
      return;
    }
    for (const [k, x] of Object.entries(o)) walk(x, /^\d+$/.test(k) ? where : `${where}.${k}`);
  };
  walk(history.events, 'events');
  return out;
}

/** JSON events as exported (ids are decimal strings, payload data base64). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RawEvent = Record<string, any>;

/** `file`'s history as exported, changed by `change` (in memory), under its recorded workflow id. */
function tampered(file: string, change: (events: RawEvent[]) => string): { workflowId: string; history: History; what: string } {
  const raw = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8')) as { events: RawEvent[] };
  const what = change(raw.events);
  return { workflowId: index[file].workflowId, history: historyFromJSON(raw), what };
}

/** Removes event `i` and renumbers the rest (their ids and every reference to a later event), so the history stays well formed. */
function removeEvent(events: RawEvent[], i: number): void {
  const removed = Number(events[i].eventId);
  events.splice(i, 1);
  const shift = (o: RawEvent): void => {
    for (const [k, v] of Object.entries(o)) {
      if ((k === 'eventId' || k.endsWith('EventId')) && typeof v === 'string' && Number(v) > removed) o[k] = String(Number(v) - 1);
      else if (v && typeof v === 'object' && !Array.isArray(v)) shift(v as RawEvent);
    }
  };
  for (const e of events) shift(e);
}

/** Inserts `event` before index `i` and renumbers (ids and every reference to an event after it). */
function insertEvent(events: RawEvent[], i: number, event: RawEvent): void {
  const at = Number(events[i].eventId);
  const shift = (o: RawEvent): void => {
    for (const [k, v] of Object.entries(o)) {
      if ((k === 'eventId' || k.endsWith('EventId')) && typeof v === 'string' && Number(v) >= at) o[k] = String(Number(v) + 1);
      else if (v && typeof v === 'object' && !Array.isArray(v)) shift(v as RawEvent);
    }
  };
  for (const e of events) shift(e);
  events.splice(i, 0, { ...event, eventId: String(at) });
}

/** The JSON of a patch marker's id. */
const patchIdOf = (e: RawEvent): string | undefined =>
  e.markerRecordedEventAttributes?.markerName === 'core_patch' ? JSON.parse(Buffer.from(e.markerRecordedEventAttributes.details['patch-data'].payloads[0].data, 'base64').toString('utf8')).id : undefined;

describe('recorded workflow histories replay against the current workflow code', function () {
  this.timeout(120_000); // bundles the workflow code and replays every recorded history, tampered copies included
  // The replayer logs through the process's Temporal runtime (the tampered cases log their failure).
  before(() => installTemporalRuntime(testLog));

  it('has recorded histories of both trading workflows, each under 1 MB', () => {
    assert.ok(files.length >= 2, `test/histories holds recorded histories (found ${files.length})`);
    const types = new Set<string>();
    for (const f of files) {
      assert.ok(index[f]?.workflowId, `${f} is listed in ${INDEX} with its workflow id (record.ts writes both)`);
      assert.ok(fs.statSync(path.join(DIR, f)).size < 1024 * 1024, `${f} is under 1 MB`);
      const started = load(f).events?.[0]?.workflowExecutionStartedEventAttributes;
      assert.ok(started?.workflowType?.name, `${f} starts with WorkflowExecutionStarted`);
      types.add(started.workflowType.name);
    }
    assert.ok(types.has('symbolTraderWorkflow') && types.has('portfolioWorkflow'), `both workflows are covered (${[...types].join(', ')})`);
  });

  it('replays every recorded history without a determinism error', async () => {
    const results = [...(await replay(plainFiles.map(recorded))), ...(await replay(encryptedFiles.map(recorded), temporalDataConverter({ encryptionKeys: parseEncryptionKeys(rotatedKeys) })))];
    assert.equal(results.length, files.length, 'one result per history');
    for (const r of results) assert.equal(r.error, undefined, `${r.workflowId}: ${r.error?.message}`);
  });

  describe('recorded with payload encryption (key A), replayed after key B became the newest', () => {
    it('has encrypted recordings whose every payload is ciphertext under key A, except what the server must read', () => {
      assert.ok(encryptedFiles.length >= 2, `encrypted recordings in test/histories (found ${encryptedFiles.join(', ')})`);
      const recordedKeyId = parseEncryptionKeys(RECORDED_WITH_KEYS)[0].id;
      for (const f of encryptedFiles) {
        assert.equal(index[f].encryptionKeyId, recordedKeyId);
        const all = payloadsOf(load(f));
        const encrypted = all.filter((p) => isEncrypted(p.payload));
        assert.ok(encrypted.length >= 10, `${f}: ${encrypted.length} encrypted payloads`);
        assert.ok(encrypted.every((p) => payloadKeyId(p.payload) === recordedKeyId), `${f}: every encrypted payload names key ${recordedKeyId}`);
        // Left readable, by design: search attributes (the server indexes them) and the core's
        // local-activity marker header (sequence, type, attempt, times: no trading data).
        const clear = all.filter((p) => !isEncrypted(p.payload)).map((p) => p.where);
        const allowed = /^events\.(upsertWorkflowSearchAttributesEventAttributes\.searchAttributes|workflowExecutionStartedEventAttributes\.searchAttributes|markerRecordedEventAttributes\.details\.data)/;
        assert.deepEqual(clear.filter((w) => !allowed.test(w)), [], `${f}: payloads in clear text`);
        const text = fs.readFileSync(path.join(DIR, f), 'utf8');
        for (const word of ['clientOrderId', 'realizedPnl', 'ETH/USDT', 'BTC/USDT', 'recorder']) {
          const inPayloads = encrypted.some((p) => Buffer.from(p.payload.data ?? []).toString('latin1').includes(word));
          assert.ok(!inPayloads, `${f}: "${word}" readable in an encrypted payload`);
        }
        assert.ok(!text.includes('"clientOrderId"'), `${f}: no order in clear JSON`);
      }
    });

    it('decode with keys A and B gives the original payloads back', async () => {
      const codec = new AesGcmPayloadCodec(parseEncryptionKeys(rotatedKeys));
      for (const f of encryptedFiles) {
        const encrypted = payloadsOf(load(f)).filter((p) => isEncrypted(p.payload));
        const decoded = await codec.decode(encrypted.map((p) => p.payload));
        const values = decoded.map((p) => defaultPayloadConverter.fromPayload(p));
        assert.ok(values.some((v) => JSON.stringify(v).includes(index[f].workflowId.split('/').slice(-2).join('/'))), `${f}: the symbol is in the decoded payloads`);
        const started = decoded[0] && defaultPayloadConverter.fromPayload<{ symbol?: string; account?: string }>(decoded[0]);
        assert.ok(started?.symbol && started.account, `${f}: the first payload is the workflow input (${JSON.stringify(started).slice(0, 80)})`);
      }
    });

    it('does not replay without key A: with no codec, or with B alone', async () => {
      const without = await replay(encryptedFiles.slice(0, 1).map(recorded));
      assert.ok(without[0].error, 'replayed without any key');
      const bOnly = parseEncryptionKeys(rotatedKeys).slice(1);
      // The codec alone (no failure converter, which would encrypt the error message with B too),
      // so the replay error can be read here.
      const retired = await replay(encryptedFiles.slice(0, 1).map(recorded), { payloadCodecs: [new AesGcmPayloadCodec(bOnly)] });
      assert.ok(retired[0].error, 'replayed after key A was retired');
      assert.match(retired[0].error!.message, /encrypted with key 'recorded-a', which is not among the configured keys \(rotated-b\)/);
    });

    it('a tampered encrypted history still fails with a DeterminismViolationError', async () => {
      const file = encryptedFiles.find((f) => /replay/.test(f)) ?? encryptedFiles[0];
      const t = tampered(file, (events) => {
        events.find((x) => x.activityTaskScheduledEventAttributes)!.activityTaskScheduledEventAttributes.activityType.name = 'placeOrders';
        return 'the order activity renamed';
      });
      const [r] = await replay([t], temporalDataConverter({ encryptionKeys: parseEncryptionKeys(rotatedKeys) }));
      assert.ok(r.error instanceof DeterminismViolationError, `${t.what}: got ${r.error ? `${r.error.name}: ${r.error.message}` : 'no error'}`);
    });
  });

  it("a candle read resolved one workflow task after its marker replays with the patches asked at start; in the shape the code before wrote, it does not (workflows/patches.ts)", async () => {
    const file = 'symbol-trader-task-boundary.json';
    const events = (JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8')) as { events: RawEvent[] }).events;
    // The shape: a candle read's marker recorded by one task, the order batch it led to by the next.
    const batch = events.findIndex((e) => e.activityTaskScheduledEventAttributes?.activityType.name === 'executeIntents');
    const tasks = events.slice(0, batch).flatMap((e, i) => (e.workflowTaskCompletedEventAttributes ? [i] : []));
    const [before, last] = tasks.slice(-2);
    assert.ok(events.slice(before, last).some((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity'), 'the read is marked by the task before the one that placed the batch');
    assert.ok(!events.slice(last, batch).some((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity'), 'no read in the batch task');
    assert.equal(patchIdOf(events[4]), 'patches-at-start', 'the first command of the first task');
    assert.deepEqual(events.flatMap((e) => (patchIdOf(e) ? [patchIdOf(e)] : [])), ['patches-at-start'], 'no other patch marker');

    const [asRecorded] = await replay([recorded(file)]);
    assert.equal(asRecorded.error, undefined, asRecorded.error?.message);
    // The code before: no marker at start, the patch asked for (and marked) at the first order batch.
    const old = tampered(file, (evs) => {
      // The marker and its TemporalChangeVersion upsert (the SDK writes both), moved from the start to the batch's task.
      const [marker, upsert] = evs.slice(4, 6).map((e) => structuredClone(e));
      removeEvent(evs, 4);
      removeEvent(evs, 4);
      const i = evs.findIndex((e) => e.activityTaskScheduledEventAttributes?.activityType.name === 'executeIntents');
      const completed = i - 1 - [...evs.slice(0, i)].reverse().findIndex((e) => e.workflowTaskCompletedEventAttributes);
      marker.markerRecordedEventAttributes.details['patch-data'].payloads[0].data = Buffer.from(JSON.stringify({ id: 'follow-ups-in-one-activity', deprecated: false })).toString('base64');
      upsert.upsertWorkflowSearchAttributesEventAttributes.searchAttributes.indexedFields.TemporalChangeVersion.data = Buffer.from(JSON.stringify(['follow-ups-in-one-activity'])).toString('base64');
      for (const e of [marker, upsert]) (e.markerRecordedEventAttributes ?? e.upsertWorkflowSearchAttributesEventAttributes).workflowTaskCompletedEventId = evs[completed].eventId;
      insertEvent(evs, completed + 1, upsert);
      insertEvent(evs, completed + 1, marker);
      return 'the patch marked at the order batch, none at start';
    });
    const [r] = await replay([old]);
    assert.ok(r.error instanceof DeterminismViolationError, `${old.what}: got ${r.error ? `${r.error.name}: ${r.error.message}` : 'no error'}`);
    assert.match(r.error.message, /patch marker encountered for change follow-ups-in-one-activity/);
  });

  it('fails with a DeterminismViolationError on tampered copies (another activity, another local activity, a missing command, a missing timer)', async () => {
    const symbol = plainFiles.find((f) => /symbol-trader-replay/.test(f)) ?? plainFiles[0];
    const first = (events: RawEvent[], key: string): RawEvent => {
      const e = events.find((x) => x[key]);
      assert.ok(e, `${symbol} has a ${key} to tamper with`);
      return e;
    };
    const cases = [
      tampered(symbol, (events) => {
        first(events, 'activityTaskScheduledEventAttributes').activityTaskScheduledEventAttributes.activityType.name = 'placeOrders';
        return 'the order activity renamed';
      }),
      tampered(symbol, (events) => {
        // The local activity's marker names its type in the JSON of its `data` payload.
        const payload = first(events, 'markerRecordedEventAttributes').markerRecordedEventAttributes.details.data.payloads[0];
        const meta = JSON.parse(Buffer.from(payload.data, 'base64').toString('utf8'));
        assert.equal(meta.activity_type, 'prepareCandle', 'the first marker is the candle read');
        payload.data = Buffer.from(JSON.stringify({ ...meta, activity_type: 'fetchCandles' })).toString('base64');
        return 'the candle read became another local activity';
      }),
      tampered(symbol, (events) => {
        // The workflow publishes TradingStatus before its first timer; a history without that command is not its history.
        const i = events.findIndex((x) => x.upsertWorkflowSearchAttributesEventAttributes);
        assert.ok(i > 0, `${symbol} has a search attribute upsert`);
        removeEvent(events, i);
        return 'the TradingStatus upsert removed';
      }),
      tampered(symbol, (events) => {
        // One candle less: the first timer and its firing gone, as if the workflow had not slept.
        const i = events.findIndex((x) => x.timerStartedEventAttributes);
        const id = events[i].timerStartedEventAttributes.timerId;
        removeEvent(events, events.findIndex((x) => x.timerFiredEventAttributes?.timerId === id));
        removeEvent(events, i);
        return 'the first candle timer removed';
      }),
    ];
    const results = await replay(cases);
    assert.equal(results.length, cases.length, 'one result per tampered history');
    for (const [i, r] of results.entries()) {
      assert.ok(r.error instanceof DeterminismViolationError, `${cases[i].what}: must fail with a DeterminismViolationError, got ${r.error ? `${r.error.name}: ${r.error.message}` : 'no error'}`);
    }
  });
});
