'use strict';
// Whether bin/trader.js runs the build (dist/, `npm run build`) or the TypeScript sources (tsx).
//
// The build is used only when it is complete and up to date: scripts/build.js writes
// dist/.build-stamp after tsc succeeded, dated when the build started and listing the source
// files it compiled. A source file saved during or after the build (an edit, a `git checkout` or
// `git pull`, which date what they write "now") or a source file added, removed or renamed since
// makes the build stale, and a stale or failed build is never run: the sources are, through tsx,
// a little slower to start but exactly what is checked out. `npm run build` makes it current again.
// The check stats the compiled directories' .ts files (tsconfig.build.json's include): a few ms.
//
// TRADER_FROM=dist or TRADER_FROM=src forces one (dist fails when there is no complete build).
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');

const stampFile = (root) => path.join(root, 'dist', '.build-stamp');

/** The compiled sources (the .ts files under tsconfig.build.json's include, and the tsconfig files), relative, sorted, with the newest mtime. */
function scanSources(root = ROOT) {
  const files = [];
  let newest = { file: null, mtimeMs: -Infinity };
  const consider = (p) => {
    const mtimeMs = fs.statSync(p).mtimeMs;
    const file = path.relative(root, p);
    files.push(file);
    if (mtimeMs > newest.mtimeMs) newest = { file, mtimeMs };
  };
  const walk = (dir) => {
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) consider(p);
    }
  };
  consider(path.join(root, 'tsconfig.json'));
  consider(path.join(root, 'tsconfig.build.json'));
  const include = JSON.parse(fs.readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8')).include;
  for (const d of include) walk(path.join(root, d));
  return { files: files.sort(), newest };
}

/** { use: 'dist' | 'src', why } for this checkout (or the project at `root`). */
function chooseBuild(env = process.env, root = ROOT) {
  const forced = env.TRADER_FROM;
  if (forced !== undefined && forced !== '' && forced !== 'dist' && forced !== 'src') throw new Error(`TRADER_FROM=${forced}: expected dist or src`);
  if (forced === 'src') return { use: 'src', why: 'TRADER_FROM=src' };
  let stamp;
  try {
    const file = stampFile(root);
    stamp = { mtimeMs: fs.statSync(file).mtimeMs, ...JSON.parse(fs.readFileSync(file, 'utf8')) };
  } catch {
    if (forced === 'dist') throw new Error('TRADER_FROM=dist but there is no complete build (dist/.build-stamp): run npm run build');
    return { use: 'src', why: 'no build (dist/.build-stamp is absent; npm run build makes one)' };
  }
  if (forced === 'dist') return { use: 'dist', why: 'TRADER_FROM=dist' };
  const now = scanSources(root);
  if (now.newest.mtimeMs > stamp.mtimeMs) return { use: 'src', why: `the build is stale: ${now.newest.file} changed after it (npm run build)` };
  const built = new Set(stamp.files ?? []);
  const added = now.files.find((f) => !built.has(f));
  if (added || now.files.length !== built.size) {
    const current = new Set(now.files);
    const removed = [...built].find((f) => !current.has(f));
    return { use: 'src', why: `the build is stale: ${added ? `${added} is new` : `${removed} is gone`} since (npm run build)` };
  }
  return { use: 'dist', why: `the build of ${new Date(stamp.mtimeMs).toISOString()} is up to date` };
}

module.exports = { ROOT, stampFile, scanSources, chooseBuild };
