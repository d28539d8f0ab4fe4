import fs from 'node:fs';
import { Session } from 'node:inspector/promises';

/**
 * A V8 CPU profile of this process over one window (the workflows' run, not the bench's start-up
 * and webpack bundling that `node --cpu-prof` would mix in), written as a .cpuprofile (open it in
 * Chrome DevTools or speedscope) and summarized by where a decision's worker CPU goes.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface CpuProfiler {
  stop(file: string): Promise<Profile>;
}

export async function startCpuProfile(intervalUs = 500): Promise<CpuProfiler> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
  await session.post('Profiler.start');
  return {
    async stop(file) {
      const { profile } = (await session.post('Profiler.stop')) as { profile: Profile };
      session.disconnect();
      fs.writeFileSync(file, JSON.stringify(profile));
      return profile;
    },
  };
}

/**
 * Which part of the worker a sampled function belongs to. The workflow bundle runs in a vm
 * context whose script names are the bundle's; the activities run as ordinary modules.
 */
function partOf(frame: ProfileNode['callFrame']): string {
  const { url, functionName: f } = frame;
  if (f === '(garbage collector)') return 'GC';
  if (f === '(idle)') return 'idle';
  // Native code outside JS: the SDK's Rust core (history, activations, gRPC), V8 itself.
  if (f === '(program)') return 'native (SDK core in Rust, V8)';
  if (/@temporalio\/workflow\//.test(url)) return 'workflow VM: SDK workflow runtime';
  if (/workflow-bundle|\/workflows\/|\/lib\/engine\/|\/lib\/trading\/(symbol-trader|workflow-lock|continue-as-new)/.test(url)) return 'workflow VM: our workflow code';
  if (/@temporalio\/worker\/lib\/workflow\//.test(url)) return 'workflow activation: worker side (vm, isolates)';
  if (/@temporalio\/common\/lib\/converter|payload/.test(url)) return 'payload conversion';
  if (/protobufjs|@temporalio\/proto/.test(url)) return 'protobuf (activations, completions)';
  if (/@temporalio\/worker\//.test(url)) return 'SDK worker (other JS)';
  if (/@temporalio\//.test(url)) return 'SDK (other JS)';
  if (/node_modules\/postgres\//.test(url)) return 'pg driver';
  if (/pino|sonic-boom|thread-stream|\/infra\/logger/.test(url)) return 'logging';
  if (/\/ledger\/|activities\/trading\/recorder/.test(url)) return 'prepare/execute: ledger recorder';
  if (/\/lib\/features\//.test(url)) return 'prepare: features';
  if (/\/lib\/exchange\/|activities\/exchange\//.test(url)) return 'prepare/execute: paper exchange';
  if (/\/lib\/trading\/candle-io|\/lib\/candle-hygiene|activities\/trading\//.test(url)) return 'prepare/execute: activity code';
  if (/node_modules\/zod\//.test(url)) return 'zod';
  if (/^node:|internal\//.test(url) || url === '') return 'node built-ins';
  if (url.includes('/node_modules/')) return `other (${url.replace(/^.*node_modules\//, '').split('/')[0]})`;
  const ours = /\/(bench|infra|ledger|lib|activities|workers|control)\/([^/]+)/.exec(url);
  return ours ? `our other code (${ours[1]}/${ours[2]})` : `other (${url || 'no script'})`;
}

/** CPU ms by part (self time), sorted, idle left out. */
export function cpuByPart(p: Profile): Array<[string, number]> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const out = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const part = partOf(byId.get(p.samples[i])!.callFrame);
    if (part === 'idle') continue;
    out.set(part, (out.get(part) ?? 0) + p.timeDeltas[i] / 1000);
  }
  return [...out].sort((a, b) => b[1] - a[1]);
}

/** Inclusive CPU ms under each of `names` (a function counted once per sample however deep it recurses). */
export function cpuUnder(p: Profile, names: readonly string[]): Map<string, number> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const want = new Set(names);
  const out = new Map<string, number>(names.map((n) => [n, 0]));
  for (let i = 0; i < p.samples.length; i++) {
    const seen = new Set<string>();
    for (let id: number | undefined = p.samples[i]; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id)!.callFrame.functionName;
      if (want.has(f) && !seen.has(f)) {
        seen.add(f);
        out.set(f, out.get(f)! + p.timeDeltas[i] / 1000);
      }
    }
  }
  return out;
}
