import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { syntheticSymbols, writeSyntheticCandleFiles } from '../../testkit/candles';
import { BotApiStandin, type BotMessage } from '../../testkit/bot-api-standin';
import { embeddedStackEnv } from '../../testkit/trader-process';

/**
 * The fire drill as an operator runs it: `trader up --replay FILE... --speed N --telegram` (a real
 * process, its embedded dev server and PostgreSQL) starts the real telegraf bot against the Bot API
 * stand-in; an admin rehearses /stop, /resume and /emergency on the replaying symbols, and the
 * kill-switch alert that follows says it comes from a replay. Without a bot token, `--telegram`
 * is a usage error that starts nothing.
 */

const run = promisify(execFile);
const REPO = path.resolve(__dirname, '..', '..');
const TRADER = path.join(REPO, 'bin', 'trader.js');
const TOKEN = '123456789:FIRE_drill_test_token_abcdefghij';
const ADMIN = 515151;

describe('fire drill: trader up --replay ... --telegram', function () {
  this.timeout(600_000); // `trader up --replay --telegram` as a child process, whole stack
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let files: string[];
  let api: BotApiStandin;
  let child: ChildProcess | undefined;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-drill-'));
    fs.chmodSync(dir, 0o755); // the embedded PostgreSQL runs as `postgres` when we are root
    // 1m candles at speed 120: two candles a second per symbol, enough to last the whole drill.
    files = writeSyntheticCandleFiles(path.join(dir, 'candles'), syntheticSymbols(2), { timeframe: '1m', count: 2000 });
    api = await BotApiStandin.start({ token: TOKEN });
    env = await embeddedStackEnv(path.join(dir, 'home'), {
      STRATEGY: 'rules',
      TELEGRAM_BOT_TOKEN: TOKEN,
      TELEGRAM_ADMIN_IDS: String(ADMIN),
      TELEGRAM_API_ROOT: api.apiRoot,
    });
  });
  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await api?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('--telegram without a bot token is a usage error that starts nothing', async () => {
    const noBot = { ...env };
    delete noBot.TELEGRAM_BOT_TOKEN;
    delete noBot.TELEGRAM_ADMIN_IDS;
    const started = Date.now();
    const err = await run(process.execPath, [TRADER, 'up', '--replay', ...files, '--telegram'], { env: noBot, cwd: dir }).then(
      () => assert.fail('trader up --telegram without a token succeeded'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(err.code, 2, err.stderr);
    assert.match(err.stderr, /--telegram needs TELEGRAM_BOT_TOKEN and TELEGRAM_ADMIN_IDS/);
    assert.ok(Date.now() - started < 60_000, 'it ends without starting anything (seconds, most of it loading the code on a busy machine)');
    assert.equal(fs.existsSync(path.join(dir, 'home', 'temporal', 'temporal.sqlite')), false, 'no dev server was started');
  });

  it('an admin stops, resumes and emergency-closes the replay through the real bot; the alerts are marked [REPLAY]', async () => {
    let out = '';
    child = spawn(process.execPath, [TRADER, 'up', '--replay', ...files, '--speed', '120', '--telegram'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<{ code: number | null; at: number }>((resolve) => child!.on('exit', (code) => resolve({ code, at: Date.now() })));
    const deadline = Date.now() + 300_000;
    while (!out.includes('Replaying 2 file(s)')) {
      if (child.exitCode !== null) assert.fail(`trader up exited (${child.exitCode}):\n${out}`);
      if (Date.now() > deadline) assert.fail(`trader up did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.match(out, /Telegram bot @\S+: \/status, \/stop, \/resume, \/emergency \(fire drill: alerts are marked \[REPLAY\]\)/);
    await api.waitForPolling(60_000);

    // The bot takes one command per admin per 5 s (the default rate limit, as in production); an
    // operator whose command came too fast is told to wait, so the drill spaces its commands.
    let lastSentAt = 0;
    const ask = async (text: string, match: RegExp, timeoutMs = 60_000): Promise<BotMessage> => {
      const wait = lastSentAt + 5_500 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      lastSentAt = Date.now();
      const since = api.messagesTo(ADMIN).length;
      api.sendText(ADMIN, text);
      return api.waitForMessage(ADMIN, match, { since, timeoutMs });
    };
    const statuses = async () =>
      JSON.parse((await run(process.execPath, [TRADER, 'status', '--json'], { env, cwd: dir })).stdout) as { symbol: string; tradingStatus: string; decisions: number }[];
    // Both symbols trading before the drill.
    for (let waited = 0; ; waited += 1_000) {
      const s = await statuses().catch(() => []);
      if (s.length === 2 && s.every((x) => x.decisions > 0)) break;
      if (waited > 180_000) assert.fail(`the symbols did not start deciding:\n${out}`);
      await new Promise((r) => setTimeout(r, 1_000));
    }

    const stop = await ask('/stop', /All symbols paused|not confirmed/);
    assert.match(stop.text, /All symbols paused/);
    assert.deepEqual((await statuses()).map((s) => s.tradingStatus), ['paused', 'paused']);
    const resume = await ask('/resume', /All symbols resumed|not confirmed/);
    assert.match(resume.text, /All symbols resumed/);
    assert.deepEqual((await statuses()).map((s) => s.tradingStatus), ['active', 'active']);

    const prompt = await ask('/emergency', /EMERGENCY CLOSE/);
    const code = /send \/emergency (\d{6})/.exec(prompt.text)?.[1];
    assert.ok(code, `the confirmation offers a code: ${prompt.text}`);
    const since = api.messagesTo(ADMIN).length;
    api.sendText(ADMIN, `/emergency ${code}`);
    // The kill switch's alert, sent by the replay's own dispatcher: marked as coming from a replay.
    const alert = await api.waitForMessage(ADMIN, /Kill switch tripped/, { since, timeoutMs: 60_000 });
    assert.match(alert.text, /^🚨 CRITICAL \[REPLAY\]: Kill switch tripped for replay: /);
    for (let waited = 0; ; waited += 500) {
      const s = await statuses();
      if (s.every((x) => x.tradingStatus === 'halted')) break;
      if (waited > 60_000) assert.fail(`not every symbol halted: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    // No alert of this process reads like live trading.
    const alerts = api.messagesTo(ADMIN).filter((m) => /^(🚨|⚠️|ℹ️) (CRITICAL|WARNING|INFO)/u.test(m.text));
    assert.ok(alerts.length > 0);
    for (const m of alerts) assert.match(m.text, /^\S+ (CRITICAL|WARNING|INFO) \[REPLAY\]: /u, `an alert without [REPLAY]: ${m.text}`);

    const sent = Date.now();
    child.kill('SIGTERM');
    const end = await exited;
    assert.equal(end.code, 0, out);
    assert.ok(end.at - sent < 60_000, 'SIGTERM ends the drill cleanly');
  });
});
