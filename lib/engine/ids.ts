/**
 * Client order ids: deterministic, so a retried or replayed decision names the same order and
 * the exchange lookup (and the ledger's unique key) turns a second send into a no-op.
 *
 *   dt<8 hex: FNV-1a of the workflow id>-<decision seq, base 36>-<code>
 *
 * The workflow part is a hash (ids are at most 36 characters; Binance's limit) and only has to
 * tell apart the few symbol workflows of one account; within a workflow the id is exact (seq and
 * code are written out, not hashed), so two orders of one workflow can never collide however
 * many it places. The code names what the order is for, so a fill found on the exchange can be
 * attributed without any other state: `en` entry, `ex` strategy exit, `sx` market exit after a
 * refused stop, `st` stop, `tp` take profit, `em` emergency exit.
 */

import { fnv1a } from '../hash';
import type { OrderTag } from './types';

export const ORDER_CODES = {
  en: 'entry',
  ex: 'exit',
  sx: 'exit',
  em: 'exit',
  st: 'stop',
  tp: 'target',
} as const satisfies Record<string, OrderTag>;
export type OrderCode = keyof typeof ORDER_CODES;

const ID_RE = /^dt([0-9a-f]{8})-([0-9a-z]+)-([a-z]{2})$/;

/** The part every order id of one workflow starts with; fills are attributed to a workflow by it. */
export function clientOrderIdPrefix(workflowId: string): string {
  let prefix = prefixes.get(workflowId);
  if (prefix === undefined) {
    if (typeof workflowId !== 'string' || workflowId.length === 0) throw new RangeError('a workflow id is a non-empty string');
    prefix = `dt${fnv1a(workflowId).toString(16).padStart(8, '0')}-`;
    // Every candle asks for its workflow's prefix (to pick its fills): hash each id once. A
    // worker serves a bounded set of symbol workflows; the bound only guards against misuse.
    if (prefixes.size >= 10_000) prefixes.clear();
    prefixes.set(workflowId, prefix);
  }
  return prefix;
}

const prefixes = new Map<string, string>();

/** Full tag names are accepted too and mean their primary code. */
const TAG_CODES: Record<string, OrderCode> = { entry: 'en', exit: 'ex', stop: 'st', target: 'tp', emergency: 'em' };

/** Same inputs, same id; at most 36 characters (`tag` is a code of ORDER_CODES or a full tag name). */
export function clientOrderId(workflowId: string, seq: number, tag: OrderCode | string): string {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`a decision sequence is a non-negative integer, got ${seq}`);
  const code = Object.hasOwn(ORDER_CODES, tag) ? tag : Object.hasOwn(TAG_CODES, tag) ? TAG_CODES[tag] : undefined;
  if (code === undefined) throw new RangeError(`unknown order tag '${tag}' (known: ${[...Object.keys(ORDER_CODES), ...Object.keys(TAG_CODES)].join(', ')})`);
  return `${clientOrderIdPrefix(workflowId)}${seq.toString(36)}-${code}`;
}

/** The id a cancel request is recorded under: derived from the order it cancels. */
export function cancelRequestId(orderId: string): string {
  return `${orderId}-x`;
}

export interface ParsedClientOrderId {
  workflowHash: string;
  seq: number;
  code: OrderCode;
  tag: OrderTag;
}

/** Reads one of our ids back; undefined for anything else (an operator's order, another bot's). */
export function parseClientOrderId(id: string): Readonly<ParsedClientOrderId> | undefined {
  // The fill at the candle cursor comes back on every candle (the cursor is inclusive): its id is
  // read once. Frozen, since callers share it.
  let parsed = parsedIds.get(id);
  if (parsed === undefined) {
    const m = ID_RE.exec(id);
    if (!m || !Object.hasOwn(ORDER_CODES, m[3])) return undefined;
    const code = m[3] as OrderCode;
    parsed = Object.freeze({ workflowHash: m[1], seq: parseInt(m[2], 36), code, tag: ORDER_CODES[code] });
    if (parsedIds.size >= 10_000) parsedIds.clear();
    parsedIds.set(id, parsed);
  }
  return parsed;
}

const parsedIds = new Map<string, Readonly<ParsedClientOrderId>>();
