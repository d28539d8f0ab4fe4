import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../../infra/errors';
import { PROJECT_ROOT } from '../../infra/strategies';
import { BUILTIN_STRATEGIES, isBuiltinStrategy } from '../../lib/strategy/builtins';
import { strategyTemplate, strategyTestTemplate } from './strategy-template';

/**
 * `trader strategy new NAME [--dir D] [--force]`: writes `D/NAME.ts`, a template strategy to edit
 * (client/commands/strategy-template.ts), and `D/NAME.test.ts`, its smoke test (a backtest of it
 * over the project's fixture candles through the CLI). D defaults to `strategies/` in the working
 * directory, where `--strategy NAME` looks first.
 *
 * Refused with a UsageError: a name that is not a strategy name (lower-case letters, digits, `-`,
 * `_`, at most 48 characters, starting with a letter or digit) or is a built-in's, and a file that
 * exists already unless `force`.
 */

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,47}$/;

export interface NewStrategyOptions {
  name: string;
  /** Default: `<cwd>/strategies`. */
  dir?: string;
  /** Overwrite existing files. */
  force?: boolean;
}

export function newStrategyFile(opts: NewStrategyOptions): { file: string; testFile: string } {
  const { name } = opts;
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new UsageError(`strategy name ${JSON.stringify(name)}: use lower-case letters, digits, '-' and '_' (at most 48 characters, starting with a letter or digit), e.g. my-idea`);
  }
  if (isBuiltinStrategy(name)) {
    throw new UsageError(`strategy name '${name}' is a built-in strategy's (${Object.keys(BUILTIN_STRATEGIES).join(', ')}); choose another name`);
  }
  const dir = path.resolve(opts.dir ?? path.join(process.cwd(), 'strategies'));
  const file = path.join(dir, `${name}.ts`);
  const testFile = path.join(dir, `${name}.test.ts`);
  if (!opts.force) {
    const existing = [file, testFile].filter((f) => fs.existsSync(f));
    if (existing.length > 0) throw new UsageError(`${existing.join(' and ')} already exist${existing.length === 1 ? 's' : ''}; choose another name or pass --force to overwrite`);
  }
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new UsageError(`${dir} is not a directory`);
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(file, strategyTemplate(name));
    fs.writeFileSync(testFile, strategyTestTemplate(name, PROJECT_ROOT));
  } catch (err) {
    throw new UsageError(`cannot write the strategy into ${dir}: ${(err as Error).message}`);
  }
  return { file, testFile };
}
