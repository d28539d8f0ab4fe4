import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { ConfigError, parseConfig } from '../../infra/config';
import { createLogger, logFormatFor, type LoggerOptions } from '../../infra/logger';
import { assertSecretsMasked } from '../../testkit/secret-log';

const REPO = path.join(__dirname, '..', '..');

/** A stream that calls itself a terminal, as process.stdout does when it is one. */
function fakeTerminal() {
  const lines: string[] = [];
  const stream = Object.assign(
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        cb();
      },
    }),
    { isTTY: true },
  );
  return { lines, stream };
}

function logTo(opts: Omit<LoggerOptions, 'destination'> = {}) {
  const { lines, stream } = fakeTerminal();
  return { lines, log: createLogger({ level: 'debug', destination: stream, ...opts }) };
}

const isJson = (line: string) => {
  try {
    return typeof JSON.parse(line) === 'object';
  } catch {
    return false;
  }
};

describe('log format', () => {
  describe('logFormatFor', () => {
    const cases: { isTTY: boolean | undefined; LOG_FORMAT?: string; expect: 'json' | 'pretty' }[] = [
      { isTTY: true, expect: 'pretty' },
      { isTTY: false, expect: 'json' },
      { isTTY: undefined, expect: 'json' }, // a pipe or a file: process.stdout.isTTY is undefined
      { isTTY: true, LOG_FORMAT: '', expect: 'pretty' },
      { isTTY: false, LOG_FORMAT: 'auto', expect: 'json' },
      { isTTY: true, LOG_FORMAT: 'auto', expect: 'pretty' },
      { isTTY: true, LOG_FORMAT: 'json', expect: 'json' },
      { isTTY: true, LOG_FORMAT: ' JSON ', expect: 'json' },
      { isTTY: false, LOG_FORMAT: 'pretty', expect: 'pretty' },
      { isTTY: undefined, LOG_FORMAT: 'Pretty', expect: 'pretty' },
      { isTTY: true, LOG_FORMAT: 'fancy', expect: 'pretty' }, // the config loader reports it
    ];
    for (const c of cases) {
      it(`isTTY=${String(c.isTTY)} LOG_FORMAT=${c.LOG_FORMAT === undefined ? '(unset)' : JSON.stringify(c.LOG_FORMAT)} -> ${c.expect}`, () => {
        assert.equal(logFormatFor({ isTTY: c.isTTY, env: c.LOG_FORMAT === undefined ? {} : { LOG_FORMAT: c.LOG_FORMAT } }), c.expect);
      });
    }
  });

  describe('createLogger', () => {
    it('writes human-readable lines to a terminal', () => {
      const { lines, log } = logTo();
      log.child({ symbol: 'BTC/USDT' }).info('order placed');
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.ok(!isJson(lines[0]), lines[0]);
      assert.match(lines[0], /^\[\d{2}:\d{2}:\d{2}\.\d{3}\] INFO: order placed \{"symbol":"BTC\/USDT"\}$/);
      // No colour codes into a stream that is not the process's stdout.
      assert.ok(!lines[0].includes('\u001b['), JSON.stringify(lines[0]));
    });

    it('writes JSON lines to a terminal when asked (format: json) and pretty lines to a pipe when asked', () => {
      const json = logTo({ format: 'json' });
      json.log.info('as json');
      assert.equal(JSON.parse(json.lines[0]).msg, 'as json');

      const lines: string[] = [];
      const pipe = { write: (l: string) => void lines.push(l) };
      createLogger({ destination: pipe }).info('piped');
      assert.equal(JSON.parse(lines[0]).msg, 'piped');
      createLogger({ destination: pipe, format: 'pretty' }).info('forced');
      assert.match(lines[1], /INFO: forced/);
    });

    it('is written before the next statement runs (the banner stays after the lines logged before it)', () => {
      const { lines, log } = logTo();
      log.info('first');
      lines.push('BANNER');
      log.warn('second');
      assert.deepEqual(lines.map((l) => l.replace(/^\[[^\]]+\] /, '')), ['INFO: first', 'BANNER', 'WARN: second']);
    });

    it('masks secrets in pretty lines as in JSON lines', () => {
      const { lines, log } = logTo();
      const all = assertSecretsMasked(log, () => lines, 'PrettyK3yThatMustNeverLeak_42');
      assert.match(all, /request with \[REDACTED\] failed/);
    });
  });

  describe('the process logger on stdout', () => {
    // A child process whose stdout is a pipe: what docker, systemd and `| tee` see.
    const run = async (env: Record<string, string>) => {
      const script = "require('./infra/logger').createLogger().info({ apiKey: 'hidden-value' }, 'hello')";
      const { stdout } = await promisify(execFile)(process.execPath, ['-r', 'tsx/cjs', '-e', script], {
        cwd: REPO,
        env: { ...process.env, LOG_FORMAT: '', LOG_LEVEL: 'info', ...env },
      });
      return stdout.trim();
    };

    it('is JSON when piped, pretty with LOG_FORMAT=pretty', async () => {
      const piped = await run({});
      assert.equal(JSON.parse(piped).msg, 'hello');
      assert.equal(JSON.parse(piped).apiKey, '[REDACTED]');
      const forced = await run({ LOG_FORMAT: 'pretty' });
      assert.ok(!isJson(forced), forced);
      assert.match(forced, /INFO: hello \{"apiKey":"\[REDACTED\]"\}/);
    });
  });

  describe('LOG_FORMAT in the config', () => {
    it('defaults to auto and accepts json and pretty in any case', () => {
      assert.equal(parseConfig({}).logFormat, 'auto');
      assert.equal(parseConfig({ LOG_FORMAT: ' JSON ' }).logFormat, 'json');
      assert.equal(parseConfig({ LOG_FORMAT: 'pretty' }).logFormat, 'pretty');
    });

    it('rejects anything else, naming the variable and the choices', () => {
      assert.throws(
        () => parseConfig({ LOG_FORMAT: 'fancy' }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.deepEqual(err.problems.map((p) => p.variable), ['LOG_FORMAT']);
          assert.match(err.message, /LOG_FORMAT="fancy": expected one of auto, json, pretty/);
          return true;
        },
      );
    });
  });
});
