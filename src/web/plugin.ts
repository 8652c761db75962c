/**
 * GET /: the upload page (web/), as built by Vite into dist/web (`npm run build`), served by @fastify/static.
 * Public, like any page: what it does, it does with the visitor's token, through the authenticated routes.
 * Only the built files are served (no directory listing, no wildcard route), so every other path keeps the
 * JSON 404 of the API.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** dist/web under the package root, found from this module whether it runs from src/ (tests) or dist/src/. */
export function builtPageDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return path.join(dir, 'dist', 'web');
}

/**
 * The page's scripts and styles come from this origin only; it talks to this origin and, in direct mode, to S3
 * (wherever the bucket is, hence any http(s) origin for connect-src). Uppy sets inline styles and shows
 * thumbnails as blob: and data: URLs.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  'connect-src *',
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export async function webPlugin(app: FastifyInstance, options: { root?: string } = {}): Promise<void> {
  const root = options.root ?? builtPageDir();
  if (!existsSync(path.join(root, 'index.html'))) {
    app.log.warn({ root }, 'the upload page is not built (npm run build); GET / answers 503');
    app.get('/', async (_request, reply) =>
      reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send('The upload page is not built: run `npm run build`, then restart.\n'),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    // One route per built file, found at start; nothing else under / is served from disk.
    wildcard: false,
    index: ['index.html'],
    serveDotFiles: false,
    // Cache-Control is set below, per file; the plugin's own would override it.
    cacheControl: false,
    setHeaders(res, filePath) {
      res.setHeader('X-Content-Type-Options', 'nosniff');
      // A ?token= in the address must never leave in a Referer.
      res.setHeader('Referrer-Policy', 'no-referrer');
      if (filePath.endsWith('.html')) {
        res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
        res.setHeader('Cache-Control', 'no-cache');
      } else {
        // Vite names assets by their content: a new build is new names.
        res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
      }
    },
  });
}
