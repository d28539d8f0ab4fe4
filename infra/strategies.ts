import crypto from 'node:crypto';
import fs from 'node:fs';
import Module from 'node:module';
import path from 'node:path';
import { BUILTIN_STRATEGIES, isBuiltinStrategy } from '../lib/strategy/builtins';
import { canonicalJson, strategyShapeProblem, type LoadedStrategy } from '../lib/strategy/run';
import { StrategyHost } from '../lib/strategy/host';
import type { Strategy } from '../lib/strategy/types';
import { CODE_ROOT, FROM_BUILD, PROJECT_ROOT } from './project-root';

/**
 * Finding and loading strategies: the built-ins, `strategies/NAME.ts` (in the working directory,
 * then in the project), the examples (`examples/strategies/NAME.ts`), or a path to a .ts file.
 *
 * A strategy file is TypeScript, type-checked at load (the TypeScript compiler, when installed:
 * a file with type errors is refused with them), then compiled as it is required: by tsx's hook
 * when the code runs from its sources (tests, a `trader` without a build), else by this module's
 * own `.ts` loader (esbuild, else the TypeScript compiler; the `trader` CLI from dist/). It
 * imports the interface as `durable-trader/strategy`; a file outside the project resolves that
 * name, and any package the project depends on (zod, technicalindicators), from the project. From
 * the build, a project source file a strategy reaches (`../../lib/strategy` in
 * examples/strategies) is its compiled copy in dist/, so the strategy and the engine share one
 * lib/strategy.
 */

export { PROJECT_ROOT };
export const STRATEGY_DIRS = ['strategies', path.join('examples', 'strategies')] as const;
const PACKAGE_NAME = 'durable-trader';

export class StrategyLoadError extends Error {
  override name = 'StrategyLoadError';
  constructor(
    readonly ref: string,
    readonly file: string | null,
    reason: string,
  ) {
    super(`strategy ${ref}${file && file !== ref ? ` (${file})` : ''}: ${reason}`);
  }
}

export function sha12(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex').slice(0, 12);
}

/** The short hash of validated parameters recorded with every decision. */
export function paramsHash(params: Record<string, unknown>): string {
  return sha12(canonicalJson(params));
}

/** A reference that names a file rather than a strategy name. */
export function isPathRef(ref: string): boolean {
  return ref.includes('/') || ref.includes('\\') || ref.endsWith('.ts') || ref.endsWith('.js');
}

export interface FindOptions {
  /** Where `strategies/` of a user's own directory is looked for first. Default: process.cwd(). */
  cwd?: string;
}

/** The file a reference names, or 'builtin'; a StrategyLoadError says where it looked. */
export function resolveStrategyRef(ref: string, opts: FindOptions = {}): { kind: 'builtin' } | { kind: 'file'; file: string } {
  const cwd = opts.cwd ?? process.cwd();
  if (isPathRef(ref)) {
    const file = path.resolve(cwd, ref);
    if (!fs.existsSync(file)) throw new StrategyLoadError(ref, file, 'no such file');
    return { kind: 'file', file };
  }
  if (isBuiltinStrategy(ref)) return { kind: 'builtin' };
  if (!/^[a-z0-9][a-z0-9_-]{0,47}$/.test(ref)) throw new StrategyLoadError(ref, null, `not a strategy name (lower-case letters, digits, '-', '_') nor a path to a .ts file`);
  const tried: string[] = [];
  for (const base of [...new Set([cwd, PROJECT_ROOT])]) {
    for (const dir of STRATEGY_DIRS) {
      const file = path.join(base, dir, `${ref}.ts`);
      tried.push(file);
      if (fs.existsSync(file)) return { kind: 'file', file };
    }
  }
  throw new StrategyLoadError(ref, null, `not found: not a built-in (${Object.keys(BUILTIN_STRATEGIES).join(', ')}) and none of ${tried.join(', ')} exists (trader strategy list shows what is found)`);
}

// --- module resolution for strategy files outside the project -------------------------------------

let resolverInstalled = false;

let compiledDirs: string[] | undefined;

/** From the build, a project source file's compiled copy (when there is one); otherwise the file itself. */
function compiledCopy(file: string): string {
  if (!FROM_BUILD || !file.endsWith('.ts')) return file;
  const rel = path.relative(PROJECT_ROOT, file);
  // The directories the build compiles (tsconfig.build.json's include): their files have a copy in dist/.
  compiledDirs ??= (JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] }).include;
  if (rel.startsWith('..') || !compiledDirs.includes(rel.split(path.sep)[0])) return file;
  const js = path.join(CODE_ROOT, rel.slice(0, -3) + '.js');
  return fs.existsSync(js) ? js : file;
}

/**
 * `durable-trader/strategy` -> lib/strategy (of the code that runs: sources or build); a package
 * a strategy file cannot find from where it is -> the project's; from the build, a project
 * source file -> its compiled copy.
 */
function installResolver(): void {
  if (resolverInstalled) return;
  resolverInstalled = true;
  installTsLoader();
  const M = Module as unknown as { _resolveFilename: (request: string, parent: unknown, ...rest: unknown[]) => string };
  const original = M._resolveFilename;
  M._resolveFilename = function (request: string, parent: unknown, ...rest: unknown[]): string {
    if (request === PACKAGE_NAME || request.startsWith(`${PACKAGE_NAME}/`)) {
      const sub = request === PACKAGE_NAME ? 'strategy' : request.slice(PACKAGE_NAME.length + 1);
      // No extension: index.ts under tsx, index.js from the build.
      if (sub === 'strategy') return original.call(this, path.join(CODE_ROOT, 'lib', 'strategy', 'index'), parent, ...rest);
    }
    try {
      return compiledCopy(original.call(this, request, parent, ...rest));
    } catch (err) {
      if (request.startsWith('.') || path.isAbsolute(request)) throw err;
      return original.call(this, request, { id: PROJECT_ROOT, filename: path.join(PROJECT_ROOT, 'package.json'), paths: (Module as unknown as { _nodeModulePaths(p: string): string[] })._nodeModulePaths(PROJECT_ROOT) }, ...rest);
    }
  };
}

type TsTranspiler = (source: string, file: string) => string;

/** esbuild (installed with tsx, a dependency), else the TypeScript compiler (a dev dependency); null when neither is. */
function tsTranspiler(): TsTranspiler | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const esbuild = require('esbuild') as typeof import('esbuild');
    return (source, file) => esbuild.transformSync(source, { loader: 'ts', format: 'cjs', target: 'node20', sourcefile: file, sourcemap: 'inline' }).code;
  } catch {
    // not installed: try the compiler
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ts = require('typescript') as typeof import('typescript');
    return (source, file) =>
      ts.transpileModule(source, { fileName: file, compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, esModuleInterop: true, inlineSourceMap: true, inlineSources: true } }).outputText;
  } catch {
    return null;
  }
}

/**
 * Requiring a .ts file compiles it, when nothing does already: from the build no tsx hook is
 * registered, and Node 20 would read a strategy's TypeScript as JavaScript. Installed with the
 * resolver, i.e. only once a strategy file is loaded.
 */
function installTsLoader(): void {
  const extensions = (Module as unknown as { _extensions: Record<string, (m: NodeJS.Module, filename: string) => void> })._extensions;
  if (extensions['.ts']) return; // tsx's hook (the sources, the tests) compiles .ts already
  let transpile: TsTranspiler | null | undefined;
  extensions['.ts'] = (m, filename) => {
    transpile ??= tsTranspiler();
    if (!transpile) throw new Error(`cannot compile ${filename}: neither esbuild nor typescript is installed (npm install)`);
    const code = transpile(fs.readFileSync(filename, 'utf8'), filename);
    (m as NodeJS.Module & { _compile(code: string, filename: string): void })._compile(code, filename);
  };
}

// --- type-checking ----------------------------------------------------------------------------------

const typeChecked = new Map<string, string | null>();

/**
 * The file's type errors (null when it has none), checked against the project's types with the
 * TypeScript compiler; 'skipped' when the compiler is not installed (npm ci --omit=dev).
 */
export function typeCheckStrategy(file: string, source: string, sourceHash = sha12(source)): string | null | 'skipped' {
  const key = `${file}|${sourceHash}`;
  const known = typeChecked.get(key);
  if (known !== undefined) return known;
  let ts: typeof import('typescript');
  try {
    // Optional: a production install without dev dependencies has no compiler (the check is skipped then).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    ts = require('typescript') as typeof import('typescript');
  } catch {
    return 'skipped';
  }
  const program = ts.createProgram([file], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    strict: true,
    esModuleInterop: true,
    skipLibCheck: true,
    noEmit: true,
    types: [],
    baseUrl: PROJECT_ROOT,
    paths: { [`${PACKAGE_NAME}/strategy`]: ['lib/strategy/index.ts'], [PACKAGE_NAME]: ['lib/strategy/index.ts'], '*': ['node_modules/*', 'node_modules/@types/*'] },
    typeRoots: [path.join(PROJECT_ROOT, 'node_modules', '@types')],
  });
  const sf = program.getSourceFile(file);
  const diags = sf ? [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)] : [];
  const result =
    diags.length === 0
      ? null
      : diags
          .slice(0, 5)
          .map((d) => {
            const pos = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
            return `${pos ? `line ${pos.line + 1}:${pos.character + 1}: ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
          })
          .join('; ') + (diags.length > 5 ? `; ... ${diags.length - 5} more` : '');
  typeChecked.set(key, result);
  return result;
}

// --- loading ----------------------------------------------------------------------------------------

export interface LoadOptions extends FindOptions {
  /** Type-check files (default true). */
  typeCheck?: boolean;
  /** Load the file again even if this process loaded it before (a `strategy set` asks for a fresh copy). */
  fresh?: boolean;
}

const builtinHashes = new Map<string, string>();

function builtinLoaded(name: keyof typeof BUILTIN_STRATEGIES): LoadedStrategy {
  const strategy = BUILTIN_STRATEGIES[name];
  let source = builtinHashes.get(name);
  if (source === undefined) {
    const file = path.join(PROJECT_ROOT, 'lib', 'strategy', 'builtins', `${name}.ts`);
    source = sha12(fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : strategy.decide.toString());
    builtinHashes.set(name, source);
  }
  return { strategy, identity: { name: strategy.name, version: strategy.version, source }, origin: 'builtin' };
}

/** Loads a strategy by reference; a StrategyLoadError names the file and the reason. */
export function loadStrategy(ref: string, opts: LoadOptions = {}): LoadedStrategy {
  const found = resolveStrategyRef(ref, opts);
  if (found.kind === 'builtin') return builtinLoaded(ref as keyof typeof BUILTIN_STRATEGIES);
  const { file } = found;
  let source: string;
  try {
    source = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new StrategyLoadError(ref, file, `cannot read it: ${(err as Error).message}`);
  }
  const hash = sha12(source);
  if (opts.typeCheck !== false) {
    const problems = typeCheckStrategy(file, source, hash);
    if (problems !== null && problems !== 'skipped') throw new StrategyLoadError(ref, file, `does not type-check: ${problems}`);
  }
  installResolver();
  if (opts.fresh) delete require.cache[require.resolve(file)];
  let mod: unknown;
  try {
    // A user's file, by path, at run time: compiled by tsx's hook or by installTsLoader's.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(file);
  } catch (err) {
    throw new StrategyLoadError(ref, file, `cannot be loaded: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
  const m = mod as { default?: unknown; strategy?: unknown };
  const strategy = m.default ?? m.strategy;
  const problem = strategyShapeProblem(strategy);
  if (problem) throw new StrategyLoadError(ref, file, problem);
  const s = strategy as Strategy;
  if (!isPathRef(ref) && s.name !== ref) throw new StrategyLoadError(ref, file, `the file's strategy is named '${s.name}'; a strategy found by name must carry that name`);
  return { strategy: s, identity: { name: s.name, version: s.version, source: hash }, origin: file };
}

/** A strategy host for a reference and raw parameters (a StrategyLoadError or StrategyParamsError when either is bad). */
export function strategyHost(ref: string, params: unknown, opts: LoadOptions & { budgetMs?: number } = {}): StrategyHost {
  const loaded = loadStrategy(ref, opts);
  const clock = (): number => performance.now();
  return new StrategyHost(loaded, params, paramsHash, opts.budgetMs === undefined ? {} : { budgetMs: opts.budgetMs, clock });
}

/** Parameters from a JSON file (`--params FILE.json`) or JSON text (`STRATEGY_PARAMS`). */
export function readStrategyParams(spec: string | undefined, cwd = process.cwd()): Record<string, unknown> | undefined {
  if (spec === undefined || spec.trim() === '') return undefined;
  const text = spec.trim();
  let raw: string;
  let where: string;
  if (text.startsWith('{') || text.startsWith('[')) {
    raw = text;
    where = 'the parameters';
  } else {
    const file = path.resolve(cwd, text);
    where = file;
    try {
      raw = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new StrategyLoadError('params', file, `cannot read the parameters file: ${(err as Error).message}`);
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new StrategyLoadError('params', where, `not JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new StrategyLoadError('params', where, 'the parameters must be a JSON object');
  return parsed as Record<string, unknown>;
}

export interface FoundStrategy {
  name: string;
  version: string | null;
  source: string | null;
  origin: string;
  description: string | null;
  /** Set when the file is found but cannot be loaded. */
  error?: string;
}

/** Every strategy a name can reach from `cwd`: the built-ins, then the files (first found wins, the rest are shadowed). */
export function listStrategies(opts: LoadOptions = {}): FoundStrategy[] {
  const cwd = opts.cwd ?? process.cwd();
  const out: FoundStrategy[] = [];
  const seen = new Set<string>();
  for (const name of Object.keys(BUILTIN_STRATEGIES) as Array<keyof typeof BUILTIN_STRATEGIES>) {
    const l = builtinLoaded(name);
    seen.add(name);
    out.push({ name, version: l.identity.version, source: l.identity.source, origin: 'builtin', description: l.strategy.description ?? null });
  }
  for (const base of [...new Set([cwd, PROJECT_ROOT])]) {
    for (const dir of STRATEGY_DIRS) {
      const d = path.join(base, dir);
      if (!fs.existsSync(d)) continue;
      for (const f of fs.readdirSync(d).filter((x) => x.endsWith('.ts') && !x.endsWith('.test.ts') && !x.endsWith('.d.ts')).sort()) {
        const name = f.slice(0, -3);
        const file = path.join(d, f);
        if (seen.has(name)) continue;
        seen.add(name);
        try {
          const l = loadStrategy(file, opts);
          out.push({ name: l.strategy.name, version: l.identity.version, source: l.identity.source, origin: path.relative(cwd, file) || file, description: l.strategy.description ?? null });
        } catch (err) {
          out.push({ name, version: null, source: null, origin: path.relative(cwd, file) || file, description: null, error: (err as Error).message });
        }
      }
    }
  }
  return out;
}

export interface PreparedStrategy {
  /** The reference as the workflows carry it: a name, or an absolute path (so every worker finds the same file). */
  ref: string;
  params?: Record<string, unknown>;
  host: StrategyHost;
}

/**
 * A strategy checked before anything starts with it: found, type-checked, loaded, its parameters
 * valid and the timeframe one it is made for. StrategyLoadError / StrategyParamsError otherwise.
 */
export function prepareStrategy(ref: string, params: Record<string, unknown> | undefined, opts: LoadOptions & { timeframe?: string; budgetMs?: number } = {}): PreparedStrategy {
  const canonical = isPathRef(ref) ? path.resolve(opts.cwd ?? process.cwd(), ref) : ref;
  const host = strategyHost(canonical, params, opts);
  const tfs = host.loaded.strategy.timeframes;
  if (opts.timeframe !== undefined && tfs && tfs.length > 0 && !tfs.includes(opts.timeframe)) {
    throw new StrategyLoadError(ref, host.loaded.origin, `made for ${tfs.join(', ')}, not ${opts.timeframe}`);
  }
  return { ref: canonical, ...(params ? { params } : {}), host };
}
