import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Debian's Chromium (scripts/ci-components.sh installs it) driven by playwright-core. Missing locally: a loud
 * SKIP line and undefined; missing under CI=true: a failure (toolchain.md "What CI must do").
 */
export async function launchChromium(t: { skip(msg: string): void }): Promise<Browser | undefined> {
  if (!existsSync(CHROMIUM)) {
    const msg = `SKIP: Chromium not found at ${CHROMIUM} (apt-get install -y chromium, or bash scripts/ci-components.sh)`;
    if (process.env.CI === 'true') throw new Error(msg.replace('SKIP', 'FAIL (CI=true)'));
    console.log(`\n*** ${msg} ***\n`);
    t.skip(msg);
    return undefined;
  }
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'], headless: true });
}
