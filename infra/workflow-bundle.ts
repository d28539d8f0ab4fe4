import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger, type WorkflowBundlePath } from '@temporalio/worker';
import type { Logger } from './logger';
import { CODE_ROOT, PROJECT_ROOT } from './project-root';

/**
 * Workflow code bundled once per version of its sources, not once per worker start.
 *
 * Worker.create({ workflowsPath }) runs webpack over workflows/ and everything it imports at every
 * start: several seconds of CPU on a small machine, for every worker restart after a crash or a
 * deploy (measured by `npm run bench -- worker-start`). Here the bundle is written under
 * TRADER_HOME/workflow-bundles/, named by a hash of everything that goes into it, and every later
 * start (any worker process sharing TRADER_HOME) loads that file instead.
 *
 * What goes into the bundle: the workflow entry file and what it imports. The architecture test
 * holds workflow code to lib/ and packages (activities as types only, erased), so the key hashes
 * every source file of workflows/ and lib/, the installed package versions (the lock file), the
 * SDK's version and the entry path. A change to any of them is a new key, hence a new bundle; a
 * stale bundle can only be loaded if a file changes and changes back to the same bytes.
 *
 * TRADER_HOME and not the OS temp directory: a worker runs this file's code, so it must come
 * from a directory only the operator writes to.
 */

/** workflows/ and lib/ of the code that runs: the sources' .ts, or the build's .js (what is then bundled). */
const REPO_ROOT = CODE_ROOT;
const HASHED_DIRS = ['workflows', 'lib'];
/** Another version's bundles are removed once unused for this long (a rolling deploy may still start them). */
const STALE_AFTER_MS = 24 * 3_600_000;

/**
 * The data converter's parts loaded by path (payload encryption's failure converter): with a
 * pre-built bundle the SDK takes them from the bundle, not from the worker's dataConverter.
 */
export interface BundledConverters {
  payloadConverterPath?: string;
  failureConverterPath?: string;
}

export function workflowBundleDir(home: string): string {
  return path.join(home, 'workflow-bundles');
}

/** The cache key of the bundle of `workflowsPath`: a hash of the sources and packages that make it up. */
export function workflowBundleKey(workflowsPath: string, converters: BundledConverters = {}): string {
  const h = crypto.createHash('sha256');
  h.update(`entry ${path.relative(REPO_ROOT, workflowsPath)}\n`);
  // A converter loaded by path runs inside the sandbox, so it is part of the bundle (and of its key).
  for (const [k, p] of Object.entries(converters)) {
    if (!p) continue;
    h.update(`${k} ${path.relative(REPO_ROOT, p)}\n`);
    h.update(fs.readFileSync(p));
  }
  h.update(`sdk ${sdkVersion()}\n`);
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|js|json)$/.test(e.name)) files.push(p);
    }
  };
  for (const d of HASHED_DIRS) walk(path.join(REPO_ROOT, d));
  // The installed tree when there is one (what is actually bundled), else the lock file.
  for (const lock of [path.join(PROJECT_ROOT, 'node_modules', '.package-lock.json'), path.join(PROJECT_ROOT, 'package-lock.json'), path.join(PROJECT_ROOT, 'tsconfig.json')]) {
    if (fs.existsSync(lock)) files.push(lock);
  }
  for (const f of files.sort()) {
    h.update(`${path.relative(REPO_ROOT, f)}\n`);
    h.update(fs.readFileSync(f));
  }
  return h.digest('hex').slice(0, 24);
}

function sdkVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(require.resolve('@temporalio/worker/package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * The bundle of `workflowsPath` from TRADER_HOME's cache, bundling it first if this version of the
 * sources has none. Concurrent first starts may both bundle; each writes its own temporary file
 * and renames it into place, so a reader never sees half a bundle.
 */
export async function cachedWorkflowBundle(workflowsPath: string, home: string, log: Logger, converters: BundledConverters = {}): Promise<WorkflowBundlePath & { cached: boolean }> {
  const dir = workflowBundleDir(home);
  const key = workflowBundleKey(workflowsPath, converters);
  const name = `${path.basename(path.dirname(workflowsPath))}-${path.basename(workflowsPath).replace(/\.[jt]s$/, '')}-${key}.js`;
  const codePath = path.join(dir, name);
  if (fs.existsSync(codePath)) {
    // Marks it as in use, for the clean-up of other versions below.
    const now = new Date();
    fs.utimesSync(codePath, now, now);
    return { codePath, cached: true };
  }
  const started = Date.now();
  const { code } = await bundleWorkflowCode({ workflowsPath, ...converters, logger: new DefaultLogger('WARN') });
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${codePath}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, code, { mode: 0o600 });
  fs.renameSync(tmp, codePath);
  log.info({ codePath, ms: Date.now() - started }, 'bundled the workflow code; later worker starts load it from the cache');
  removeStaleBundles(dir, codePath);
  return { codePath, cached: false };
}

function removeStaleBundles(dir: string, keep: string): void {
  for (const f of fs.readdirSync(dir)) {
    const p = path.join(dir, f);
    if (p === keep) continue;
    try {
      if (Date.now() - fs.statSync(p).mtimeMs > STALE_AFTER_MS) fs.rmSync(p, { force: true });
    } catch {
      // removed by another process meanwhile
    }
  }
}
