import type { SearchRange, SearchSpace, Strategy } from '../strategy/types';
import { strategyParams } from '../strategy/run';
import { SPACE_NAMES, type ParamDistribution } from '../contracts/hyperopt';

/** A search that cannot start: the CLI exits 2 with this message, nothing is started. */
export class HyperoptInputError extends Error {
  override name = 'HyperoptInputError';
}

/** `entry,exit` as space names; every name must be one of SPACE_NAMES. */
export function parseSpaces(text: string | undefined): SearchSpace[] | undefined {
  if (text === undefined) return undefined;
  const names = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new HyperoptInputError(`--spaces: give one or more of ${SPACE_NAMES.join(', ')}`);
  const bad = names.filter((n) => !(SPACE_NAMES as readonly string[]).includes(n));
  if (bad.length > 0) throw new HyperoptInputError(`--spaces: ${bad.join(', ')}: not a space; the spaces are ${SPACE_NAMES.join(', ')}`);
  return [...new Set(names)] as SearchSpace[];
}

function rangeProblem(name: string, r: SearchRange): string | null {
  if (r === null || typeof r !== 'object') return `${name}: a search range is an object with a type`;
  if (r.space !== undefined && !(SPACE_NAMES as readonly string[]).includes(r.space)) return `${name}: space '${String(r.space)}' is not one of ${SPACE_NAMES.join(', ')}`;
  if (r.type === 'categorical') {
    if (!Array.isArray(r.choices) || r.choices.length === 0) return `${name}: a categorical range needs at least one choice`;
    if (!r.choices.every((c) => ['string', 'number', 'boolean'].includes(typeof c))) return `${name}: choices are strings, numbers or booleans`;
    return null;
  }
  if (r.type !== 'int' && r.type !== 'float') return `${name}: type '${String((r as { type: unknown }).type)}' is not int, float or categorical`;
  if (!Number.isFinite(r.low) || !Number.isFinite(r.high)) return `${name}: low and high must be finite numbers`;
  if (r.low > r.high) return `${name}: low ${r.low} is above high ${r.high}`;
  if (r.type === 'int' && !(Number.isInteger(r.low) && Number.isInteger(r.high))) return `${name}: an int range has integer bounds (got ${r.low}..${r.high})`;
  if (r.step !== undefined && !(Number.isFinite(r.step) && r.step > 0)) return `${name}: step must be a positive number`;
  if (r.type === 'float' && r.log && r.low <= 0) return `${name}: a log range needs low > 0`;
  return null;
}

/**
 * The search space of a strategy: its `search` ranges, kept to the spaces asked for, each checked
 * against its own parameter schema (a range whose bounds the schema refuses would only make
 * failed trials). Throws HyperoptInputError naming the parameter.
 */
export function searchSpace(strategy: Strategy, spaces?: readonly SearchSpace[], base: Record<string, unknown> = {}): Record<string, ParamDistribution> {
  const search = (strategy.search ?? {}) as Record<string, SearchRange | undefined>;
  const defaults = strategyParams(strategy, base);
  const out: Record<string, ParamDistribution> = {};
  for (const [name, range] of Object.entries(search)) {
    if (range === undefined) continue;
    const problem = rangeProblem(name, range);
    if (problem) throw new HyperoptInputError(`${strategy.name}: search range ${problem}`);
    if (!(name in defaults)) throw new HyperoptInputError(`${strategy.name}: search range ${name} is not one of its parameters (${Object.keys(defaults).join(', ')})`);
    if (spaces && !spaces.includes(range.space ?? 'entry')) continue;
    const ends = range.type === 'categorical' ? range.choices : [range.low, range.high];
    for (const v of ends) {
      const parsed = strategy.params.safeParse({ ...defaults, [name]: v });
      if (!parsed.success) throw new HyperoptInputError(`${strategy.name}: search range ${name} reaches ${JSON.stringify(v)}, which its parameters refuse: ${parsed.error.issues[0]?.message}`);
    }
    out[name] = range;
  }
  if (Object.keys(out).length === 0) {
    const have = Object.entries(search).filter(([, r]) => r).map(([n, r]) => `${n} (${r!.space ?? 'entry'})`);
    throw new HyperoptInputError(
      have.length === 0
        ? `${strategy.name} declares no search ranges: add \`search\` to the strategy (docs/strategies.md)`
        : `the space is empty: no search range of ${strategy.name} is in ${spaces?.join(', ')}; it has ${have.join(', ')}`,
    );
  }
  return out;
}

/**
 * Whether a value lies in its range (the sampler's answer is checked before it is run; so is a
 * parameter file given to `--apply`).
 */
export function inRange(r: SearchRange, v: unknown): boolean {
  if (r.type === 'categorical') return r.choices.some((c) => c === v);
  if (typeof v !== 'number' || !Number.isFinite(v)) return false;
  if (r.type === 'int' && !Number.isInteger(v)) return false;
  const eps = 1e-9 * Math.max(1, Math.abs(r.high - r.low));
  return v >= r.low - eps && v <= r.high + eps;
}

/** Throws naming the first parameter outside its range. */
export function assertInSpace(space: Record<string, ParamDistribution>, params: Record<string, unknown>): void {
  for (const [name, r] of Object.entries(space)) {
    if (!(name in params)) throw new HyperoptInputError(`parameter ${name} is missing`);
    if (!inRange(r, params[name])) throw new HyperoptInputError(`parameter ${name} = ${JSON.stringify(params[name])} is outside its range ${describeRange(r)}`);
  }
}

export function describeRange(r: SearchRange): string {
  if (r.type === 'categorical') return `{${r.choices.map((c) => JSON.stringify(c)).join(', ')}}`;
  return `${r.type} [${r.low}, ${r.high}]${r.step ? ` step ${r.step}` : ''}${r.type === 'float' && r.log ? ' log' : ''}`;
}
