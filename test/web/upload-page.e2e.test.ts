/**
 * The upload page in a real browser (Debian's Chromium through playwright-core) against a real Freight (real
 * PostgreSQL, real S3): what a person sees when the network drops or the page reloads in the middle of a 56 MiB
 * upload, through tus and straight to S3. Bytes go through throttling relays (in front of Freight, and in front
 * of S3 for direct uploads) so that "the middle" exists on a fast machine; the relays also cut the connections
 * while the browser is offline. Screenshots go to test-results/.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { repoRoot } from '../../scripts/services.js';
import { ensureBucket } from '../../src/storage/bucket.js';
import {
  createTestBucket,
  eventually,
  JWT_SECRET,
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
import { testDatabaseUrl } from '../helpers/file-database.js';

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

/**
 * Opens the page as a person given a link with their token. The browser is shared by the tests, each as another
 * user: when the page asks whether to sign in as someone else than the last user, the person says yes.
 */
async function openAs(user: string, base = front.url): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${base}/?token=${await tokenFor(user)}`);
  await page.locator('#upload:visible, #switch:visible').first().waitFor();
  if (await page.locator('#switch').isVisible()) await page.getByRole('button', { name: `Sign in as ${user}` }).click();
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
      // The page has noticed: the file waits for the network (or its client already reports the cut).
      await expect
        .poll(() => transfer(page, name).getAttribute('data-state'), { timeout: 10_000 })
        .toMatch(/^(waiting for the network|failed)$/);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'upload-page-tus-offline.png') });
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
      // Uppy marks the file failed after a cut in S3 mode; the page retries it once the browser is back online.
      await expect.poll(() => transfer(page, name).getAttribute('data-state'), { timeout: 10_000 }).toBe('failed');
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

/** A completed tus upload of `data` for `user`, made outside the page; its id. */
async function completedUpload(base: string, user: string, name: string, data: Buffer): Promise<string> {
  const auth = { Authorization: `Bearer ${await tokenFor(user)}`, 'Tus-Resumable': '1.0.0' };
  const created = await fetch(`${base}/files/`, {
    method: 'POST',
    headers: {
      ...auth,
      'Upload-Length': String(data.length),
      'Upload-Metadata': `filename ${Buffer.from(name).toString('base64')}`,
    },
  });
  const url = created.headers.get('location')!;
  const patched = await fetch(url, {
    method: 'PATCH',
    headers: { ...auth, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
    body: new Uint8Array(data),
  });
  expect(patched.status).toBe(204);
  return url.split('/').pop()!;
}

describe('a ?token= link for someone else', () => {
  const who = (page: Page) => page.locator('#who').textContent();

  test('signed in as A, a link of B asks first; "stay" keeps A (and uploads go to A), "sign in as B" switches', async () => {
    const a = uniqueUser('page-a');
    const b = uniqueUser('page-b');
    const page = await openAs(a);
    await expect.poll(() => who(page)).toBe(`Signed in as ${a}`);

    await page.goto(`${front.url}/?token=${await tokenFor(b)}`);
    const question = page.locator('#switch');
    await question.waitFor();
    expect(page.url()).toBe(`${front.url}/`);
    expect(await question.textContent()).toContain(
      `You are signed in as ${a}. The link you opened would sign you in as ${b} instead`,
    );
    // Nothing acts for either of them until the person has chosen.
    expect(await page.locator('#upload').isHidden()).toBe(true);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'upload-page-switch-question.png'), fullPage: true });
    await page.getByRole('button', { name: `Stay signed in as ${a}` }).click();
    await expect.poll(() => who(page)).toBe(`Signed in as ${a}`);
    await question.waitFor({ state: 'hidden' });

    const { file, name } = await localFile('after-declining.bin');
    await upload(page, 'tus', file);
    await expect.poll(() => transfer(page, name).getAttribute('data-state'), { timeout: 60_000 }).toBe('completed');
    expect(await theUpload(a)).toMatchObject({ status: 'completed' });
    expect(await sql`select id from file_uploads where user_id = ${b}`).toHaveLength(0);

    await page.goto(`${front.url}/?token=${await tokenFor(b)}`);
    await page.getByRole('button', { name: `Sign in as ${b}` }).click();
    await expect.poll(() => who(page)).toBe(`Signed in as ${b}`);
    await page.close();
  });

  test('a new tab from a link of B, after A signed in on this browser, asks too ("stay signed out"); a fresh link of A does not ask', async () => {
    const a = uniqueUser('page-last');
    const b = uniqueUser('page-other');
    const first = await openAs(a);
    await first.close();

    const page = await context.newPage();
    await page.goto(`${front.url}/?token=${await tokenFor(b)}`);
    await page.locator('#switch').waitFor();
    expect(await page.locator('#switch-text').textContent()).toContain(`This browser was last signed in as ${a}`);
    await page.getByRole('button', { name: 'Stay signed out' }).click();
    await page.locator('#sign-in').waitFor();
    expect(await page.locator('#upload').isHidden()).toBe(true);
    // Not "the server refused your token": this tab sent none.
    expect(await page.locator('#notice').isHidden()).toBe(true);
    await page.close();

    const again = await context.newPage();
    await again.goto(`${front.url}/?token=${await tokenFor(a)}`);
    await expect.poll(() => who(again)).toBe(`Signed in as ${a}`);
    expect(await again.locator('#switch').isHidden()).toBe(true);
    await again.close();
  });

  test('a link whose token the server refuses changes nothing for a signed-in person, and says so', async () => {
    const a = uniqueUser('page-keep');
    const page = await openAs(a);
    await page.goto(`${front.url}/?token=not-a-token`);
    await expect.poll(() => page.locator('#link-note').textContent()).toContain('the server refused its token');
    await expect.poll(() => who(page)).toBe(`Signed in as ${a}`);
    await page.close();
  });
});

describe('Download on the page', () => {
  let fileStore: RunningFreight;
  beforeAll(async () => {
    fileStore = await startFreight({
      DATABASE_URL: testDatabaseUrl(),
      AUTH_JWT_SECRET: JWT_SECRET,
      LOG_LEVEL: 'silent',
    });
  });
  afterAll(() => fileStore?.close());

  for (const storage of ['S3', 'file store'] as const) {
    test(`${storage}: the browser fetches a short-lived link itself (a navigation to a download, never the page's fetch), byte-identical`, async () => {
      const base = storage === 'S3' ? freight.url : fileStore.url;
      const user = uniqueUser('page-download');
      const data = randomData(storage === 'S3' ? 64 * MiB : 8 * MiB);
      const name = `download ${storage}.bin`;
      const id = await completedUpload(base, user, name, data);
      const page = await openAs(user, base);
      const requests: Array<{ url: string; type: string; navigation: boolean }> = [];
      page.on('request', (request) =>
        requests.push({ url: request.url(), type: request.resourceType(), navigation: request.isNavigationRequest() }),
      );
      const button = page.locator(`#upload-rows tr[data-id="${id}"]`).getByRole('button', { name: `Download ${name}` });
      await button.waitFor();
      const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);

      // The download is the link itself (today's page handed over a blob: of bytes it had fetched).
      const link = new URL(download.url());
      expect(link.protocol).toBe('http:');
      if (storage === 'S3') expect(link.origin).toBe(s3Relay.url);
      else expect(link.href).toMatch(new RegExp(`^${base}/downloads/${id}\\?expires=\\d+&signature=`));
      // A navigation of the page's (S3, another origin), or, for a same-origin <a download>, straight to the
      // browser's download manager (no request the page sees at all); never a fetch or XHR of the page's.
      const forBytes = requests.filter((request) => request.url === download.url());
      if (storage === 'S3') expect(forBytes.length).toBeGreaterThan(0);
      expect(forBytes.every((request) => request.navigation && request.type === 'document')).toBe(true);
      // The page itself asked only for the link (a small JSON answer), never for the bytes.
      const pageFetches = requests.filter((request) => request.type === 'fetch' && request.url.includes(id));
      expect(pageFetches.map((request) => new URL(request.url).pathname)).toEqual([`/api/uploads/${id}/download-link`]);
      expect(await download.failure()).toBeNull();
      expect(sha256(await readFile((await download.path())!))).toBe(sha256(data));
      expect(download.suggestedFilename()).toBe(name);
      await page.close();
    });
  }
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
