import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's chromium (`apt-get install chromium`; .ci/run installs it when missing), or $GRADQ_CHROMIUM. */
export const CHROMIUM = process.env.GRADQ_CHROMIUM ?? '/usr/bin/chromium';
/** Flags that work in containers without a GPU, a sandbox or a network. */
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
]; // prettier-ignore

/** A headless Chromium with a fresh profile of its own, removed on close. */
export async function launchChromium(
  viewport = { width: 1280, height: 900 },
  deviceScaleFactor = 1,
): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: install it (apt-get install chromium; .ci/run does) or point $GRADQ_CHROMIUM at one`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'gradq-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport,
    deviceScaleFactor,
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Renders a local SVG or HTML file to a PNG in headless Chromium: an SVG at exactly its own size, a page whole
 * (`width` CSS pixels wide, as tall as it is), `scale` device pixels per CSS pixel.
 */
export async function renderPng(input: string, output: string, o: { width?: number; scale?: number } = {}): Promise<void> {
  const browser = await launchChromium({ width: o.width ?? 800, height: 600 }, o.scale ?? 1);
  try {
    const page = await browser.context.newPage();
    await page.goto(pathToFileURL(resolve(input)).href);
    const svg = await page.$('svg:root');
    if (svg) await svg.screenshot({ path: output, type: 'png' });
    else await page.screenshot({ path: output, type: 'png', fullPage: true });
  } finally {
    await browser.close();
  }
}
