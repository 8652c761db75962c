/**
 * The upload page in a real browser (Debian's Chromium through playwright-core) against a real Freight (real
 * PostgreSQL, real S3): what a person sees when the network drops or the page reloads in the middle of a 56 MiB
 * upload, through tus and straight to S3. Bytes go through throttling relays (in front of Freight, and in front
 * of S3 for direct uploads) so that "the middle" exists on a fast machine; the relays also cut the connections
 * while the browser is offline. Screenshots go to test-results/.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { repoRoot } from '../../scripts/services.js';
import { ensureBucket } from '../../src/storage/bucket.js';
import {
  createTestBucket,
  eventually,
  MiB,
  randomData,
  serviceEnv,
  sha256,
  sha256OfObject,
  startFreight,
  testS3Client,
  testSql,
  tokenFor,
  uniqueUser,
  type RunningFreight,
} from '../helpers/harness.js';
import { throttlingProxy, type ThrottlingProxy } from '../helpers/throttle.js';
import { launchChromium } from './browser.js';

const SIZE = 56 * MiB + 123;
/** Slow enough that an upload of SIZE takes about 4 s: a test can act half-way on any machine. */
const RATE = 14 * MiB;
const SCREENSHOTS = path.join(repoRoot(), 'test-results');

const s3 = testS3Client();
const sql = testSql();
let bucket: Awaited<ReturnType<typeof createTestBucket>>;
let s3Relay: ThrottlingProxy;
let freight: RunningFreight;
let front: ThrottlingProxy;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let context: BrowserContext;
let files: string;

beforeAll(async () => {
  bucket = await createTestBucket(s3, 'freight-web');
  // Browsers PUT parts straight to the bucket and read their ETag: its CORS rules must allow it.
  await ensureBucket(s3, bucket.bucket, { corsOrigins: '*' });
  s3Relay = await throttlingProxy(inject('s3').endpoint);
  freight = await startFreight(serviceEnv(bucket.bucket, { S3_ENDPOINT: s3Relay.url }));
  front = await throttlingProxy(freight.url);
  browser = await launchChromium(inject('chromium'));
  context = browser.context;
  files = await mkdtemp(path.join(os.tmpdir(), 'freight-web-files-'));
  await mkdir(SCREENSHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await front?.close();
  await freight?.close();
  await s3Relay?.close();
  await bucket?.drop();
  await sql.end();
  s3.destroy();
  await rm(files, { recursive: true, force: true });
});

async function localFile(name: string): Promise<{ file: string; name: string; data: Buffer }> {
  const data = randomData(SIZE);
  const file = path.join(files, name);
  await writeFile(file, data);
  return { file, name, data };
}

/** Opens the page as a person given a link with their token. */
async function openAs(user: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${front.url}/?token=${await tokenFor(user)}`);
  await page.locator('#upload').waitFor();
  return page;
}

/** Chooses how the bytes travel, adds the file to the Dashboard and presses its upload button. */
async function upload(page: Page, mode: 'tus' | 'direct', file: string): Promise<void> {
  await page.getByLabel(mode === 'tus' ? /Through Freight/ : /Straight to storage/).check();
  await page.locator('input.uppy-Dashboard-input').first().setInputFiles(file);
  await page.locator('.uppy-StatusBar-actionBtn--upload').click();
}

/** The "In this tab" line of a file. */
const transfer = (page: Page, name: string) => page.locator(`#transfers li[data-file="${name}"]`);

async function whenSent(relay: ThrottlingProxy, from: number, bytes: number): Promise<void> {
  await eventually(async () => (relay.sent - from >= bytes ? true : undefined), 30_000);
}

async function theUpload(user: string) {
  const rows = await sql`select id, status, storage_key, protocol from file_uploads where user_id = ${user}`;
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

describe('the upload page', () => {
  test('tus: the network drops half-way (browser offline, connections reset); it completes byte-identical, the list says completed', async () => {
    const user = uniqueUser('page-tus');
    const { file, name, data } = await localFile('through-freight.bin');
    const page = await openAs(user);
    await expect.poll(() => page.locator('#who').textContent()).toBe(`Signed in as ${user}`);
    front.rate = RATE;
    const before = front.sent;
    try {
      await upload(page, 'tus', file);
      await whenSent(front, before, 24 * MiB);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'upload-page-tus-uploading.png'), fullPage: true });
      await context.setOffline(true);
      front.cut();
      await page.screenshot({ path: path.join(SCREENSHOTS, 'upload-page-tus-offline.png') });
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      front.restore();
      await context.setOffline(false);
      await expect.poll(() => transfer(page, name).getAttribute('data-state'), { timeout: 60_000 }).toBe('completed');
    } finally {
      front.rate = undefined;
    }
    const row = await theUpload(user);
    expect(row).toMatchObject({ status: 'completed', protocol: 'tus' });
    expect(await sha256OfObject(s3, bucket.bucket, row.storage_key)).toBe(sha256(data));
    // Resumed, not restarted: the file once, plus what was in flight at the cut.
    expect(front.sent - before).toBeLessThan(SIZE + 16 * MiB);
    const listed = page.locator(`#upload-rows tr[data-id="${row.id}"]`);
    await expect.poll(() => listed.getAttribute('data-status'), { timeout: 10_000 }).toBe('completed');
    await listed.getByRole('button', { name: `Download ${name}` }).waitFor();
    await page.screenshot({ path: path.join(SCREENSHOTS, 'upload-page-tus-completed.png'), fullPage: true });
    await page.close();
  });

  test('direct: the network drops half-way; the failed file is retried when the browser is back online and completes byte-identical in S3', async () => {
    const user = uniqueUser('page-direct');
    const { file, name, data } = await localFile('straight-to-s3.bin');
    const page = await openAs(user);
    s3Relay.rate = RATE;
    const before = s3Relay.sent;
    try {
      await upload(page, 'direct', file);
      await whenSent(s3Relay, before, 24 * MiB);
      await context.setOffline(true);
      s3Relay.cut();
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      s3Relay.restore();
      await context.setOffline(false);
      await expect.poll(() => transfer(page, name).getAttribute('data-state'), { timeout: 60_000 }).toBe('completed');
    } finally {
      s3Relay.rate = undefined;
    }
    const row = await theUpload(user);
    expect(row).toMatchObject({ status: 'completed', protocol: 'direct' });
    expect(await sha256OfObject(s3, bucket.bucket, row.storage_key)).toBe(sha256(data));
    // Stored parts were kept: at most the parts in flight were sent again (plus Freight's own S3 calls).
    expect(s3Relay.sent - before).toBeLessThan(SIZE + 16 * MiB);
    const listed = page.locator(`#upload-rows tr[data-id="${row.id}"]`);
    await expect.poll(() => listed.getAttribute('data-status'), { timeout: 10_000 }).toBe('completed');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'upload-page-direct-completed.png'), fullPage: true });
    await page.close();
  });

  for (const mode of ['tus', 'direct'] as const) {
    test(`${mode}: the page is reloaded half-way; the same file added again resumes where it stopped`, async () => {
      const user = uniqueUser(`page-reload-${mode}`);
      const { file, name, data } = await localFile(`reloaded-${mode}.bin`);
      const page = await openAs(user);
      const relay = mode === 'tus' ? front : s3Relay;
      relay.rate = RATE;
      const before = relay.sent;
      try {
        await upload(page, mode, file);
        await whenSent(relay, before, 24 * MiB);
        await page.reload();
        await page.locator('#upload').waitFor();
        // Still signed in (the token is kept for the tab), and the file continues once added again.
        await expect.poll(() => page.locator('#who').textContent()).toBe(`Signed in as ${user}`);
        await upload(page, mode, file);
        await expect.poll(() => transfer(page, name).getAttribute('data-state'), { timeout: 60_000 }).toBe('completed');
      } finally {
        relay.rate = undefined;
      }
      const row = await theUpload(user);
      expect(row).toMatchObject({ status: 'completed', protocol: mode });
      expect(await sha256OfObject(s3, bucket.bucket, row.storage_key)).toBe(sha256(data));
      expect(relay.sent - before).toBeLessThan(SIZE + 16 * MiB);
      await page.close();
    });
  }

  test('keyboard: Tab reaches every control, each with a name', async () => {
    const page = await openAs(uniqueUser('page-keys'));
    await page.locator('#upload-rows').waitFor({ state: 'attached' });
    const reached: string[] = [];
    for (let i = 0; i < 20; i++) {
      await page.keyboard.press('Tab');
      reached.push(
        await page.evaluate(() => {
          const element = document.activeElement as HTMLInputElement | null;
          if (!element || element === document.body) return '';
          const label =
            element.getAttribute('aria-label') ?? element.labels?.[0]?.textContent ?? element.textContent ?? '';
          return label.replace(/\s+/g, ' ').trim();
        }),
      );
    }
    expect(reached.filter(Boolean)).toEqual(
      expect.arrayContaining([
        'Skip to the uploads',
        'Sign out',
        expect.stringMatching(/^Through Freight \(tus\)/),
        expect.stringMatching(/browse files/i),
        'Refresh',
      ]),
    );
    // The other way the bytes can travel is one arrow key away, as in any radio group.
    await page.getByLabel(/Through Freight/).focus();
    await page.keyboard.press('ArrowDown');
    expect(await page.getByLabel(/Straight to storage/).isChecked()).toBe(true);
    await page.close();
  });

  test('a token the server refuses shows the sign-in form with the reason; a good one pasted there signs in', async () => {
    const page = await context.newPage();
    await page.goto(`${front.url}/?token=not-a-token`);
    await expect.poll(() => page.locator('#sign-in-error').textContent()).toContain('Not signed in: invalid token');
    expect(page.url()).toBe(`${front.url}/`);
    const user = uniqueUser('page-signin');
    await page.getByLabel('Access token').fill(await tokenFor(user));
    await page.getByLabel('Access token').press('Enter');
    await expect.poll(() => page.locator('#who').textContent()).toBe(`Signed in as ${user}`);
    await expect.poll(() => page.locator('#uploads-status').textContent()).toBe('No uploads yet.');
    await page.close();
  });
});

describe('the upload page on a server without authentication', () => {
  test('it just works: no sign-in, straight to the uploader', async () => {
    const open = await startFreight(serviceEnv(bucket.bucket, { AUTH_DISABLED: 'true', AUTH_JWT_SECRET: undefined }));
    try {
      const page = await context.newPage();
      await page.goto(`${open.url}/`);
      await expect.poll(() => page.locator('#who').textContent()).toBe('No sign-in needed on this server');
      await page.locator('#sign-in').waitFor({ state: 'hidden' });
      await page.locator('#dashboard .uppy-Dashboard').waitFor();
      await page.close();
    } finally {
      await open.close();
    }
  });
});
