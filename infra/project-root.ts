import fs from 'node:fs';
import path from 'node:path';

/**
 * Where things are, whether this code runs from the TypeScript sources (infra/x.ts under tsx) or
 * from the build (dist/infra/x.js, `npm run build`): the compiled tree mirrors the sources under
 * dist/, and holds nothing else.
 */

/** The root of the running code's own directories (lib/, workflows/...): the project from the sources, PROJECT_ROOT/dist from the build. */
export const CODE_ROOT = path.resolve(__dirname, '..');

/** The project's directory: package.json, node_modules, .tools, ledger/migrations, models/bootstrap, the TypeScript sources. */
export const PROJECT_ROOT = fs.existsSync(path.join(CODE_ROOT, 'package.json')) ? CODE_ROOT : path.dirname(CODE_ROOT);

/** True when the running code is the build (dist/), not the sources. */
export const FROM_BUILD = CODE_ROOT !== PROJECT_ROOT;
