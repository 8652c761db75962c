/**
 * The upload page (web/) is built by Vite into dist/web, which Fastify serves (src/web/plugin.ts). Everything
 * the page runs (Uppy, its styles) is bundled from node_modules: nothing comes from a CDN.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/',
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    // Uppy (Preact, the Dashboard, tus-js-client) is one bundle of about half a MB; said once, not warned about.
    chunkSizeWarningLimit: 1024,
    sourcemap: false,
  },
});
