import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/**
 * The installed Chromium (Debian's `chromium`; `.ci/run` installs it), driven by playwright-core.
 * The flags keep it off the network on its own (no component updates, no sync, no background
 * requests: on a closed network those connections are refused and logged), and each launch gets
 * a fresh profile directory.
 */
export function findChromium(): string | undefined {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].filter((p): p is string => !!p);
  return candidates.find((p) => fs.existsSync(p));
}

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function withChromium<T>(executablePath: string, fn: (context: BrowserContext) => Promise<T>): Promise<T> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'chromium-profile-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 900 } });
  try {
    return await fn(context);
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

/** Waits until the report's page script has run; its verdict: 'drawn', or 'failed'. (A string expression: this program has no DOM types.) */
export async function chartsDrawn(page: Page): Promise<string> {
  await page.waitForFunction('document.body.dataset.charts !== undefined', null, { timeout: 60_000 });
  return (await page.evaluate('document.body.dataset.charts')) as string;
}
