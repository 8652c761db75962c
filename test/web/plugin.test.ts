import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { webPlugin } from '../../src/web/plugin.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'freight-web-root-'));
  await mkdir(path.join(root, 'assets'));
  await writeFile(path.join(root, 'index.html'), '<!doctype html><title>page</title>');
  await writeFile(path.join(root, 'assets', 'index-abc123.js'), 'console.log(1)');
});
afterAll(() => rm(root, { recursive: true, force: true }));

async function app(pageRoot: string) {
  const instance = Fastify({ logger: false });
  instance.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: 'ERR_ROUTE_NOT_FOUND' }));
  await instance.register(webPlugin, { root: pageRoot });
  return instance;
}

describe('the upload page plugin', () => {
  test('GET / is the built page, with a policy that lets only this origin script it', async () => {
    const server = await app(root);
    const page = await server.inject('/');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<title>page</title>');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.headers['cache-control']).toBe('no-cache');
    const asset = await server.inject('/assets/index-abc123.js');
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['cache-control']).toContain('immutable');
    await server.close();
  });

  test('nothing but the built files: other paths keep the JSON 404, no listing, no escape from the folder', async () => {
    const server = await app(root);
    for (const url of ['/nothing', '/assets/', '/assets/../index.html', '/%2e%2e/package.json']) {
      const res = await server.inject(url);
      expect(res.statusCode, url).toBe(url === '/assets/../index.html' ? 200 : 404);
    }
    await server.close();
  });

  test('a page that was never built answers 503 with what to do', async () => {
    const server = await app(path.join(root, 'missing'));
    const res = await server.inject('/');
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain('npm run build');
    await server.close();
  });
});
