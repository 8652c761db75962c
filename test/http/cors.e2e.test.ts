/**
 * One CORS policy for the whole server (src/http/cors.ts): the same headers on tus's own answers, on errors
 * raised before tus, on the resume check and on the JSON API, one Access-Control-Allow-Origin each, Vary: Origin
 * when origins are listed, and Retry-After readable by browsers.
 */
import { describe, expect, test } from 'vitest';
import { freightOnS3, tokenFor, uniqueUser } from '../helpers/harness.js';

const ALLOWED = 'https://app.example.com';
const ctx = freightOnS3('freight-cors', { CORS_ORIGINS: `${ALLOWED},https://other.example.com` });

const TUS = { 'Tus-Resumable': '1.0.0' };

async function answers(origin: string) {
  const auth = { Authorization: `Bearer ${await tokenFor(uniqueUser('cors'))}`, Origin: origin };
  const created = await fetch(`${ctx.freight.url}/files/`, {
    method: 'POST',
    headers: { ...TUS, ...auth, 'Upload-Length': '3' },
  });
  const url = created.headers.get('location')!;
  return {
    'tus POST 201': created,
    'tus PATCH 204': await fetch(url, {
      method: 'PATCH',
      headers: { ...TUS, ...auth, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
      body: 'abc',
    }),
    'tus PATCH 409 (from tus)': await fetch(url, {
      method: 'PATCH',
      headers: { ...TUS, ...auth, 'Upload-Offset': '1', 'Content-Type': 'application/offset+octet-stream' },
      body: 'x',
    }),
    'tus 401 (before tus)': await fetch(url, { method: 'HEAD', headers: { ...TUS, Origin: origin } }),
    'tus 412 (before tus)': await fetch(url, { method: 'HEAD', headers: { ...auth } }),
    'tus HEAD 200 (resume check)': await fetch(url, { method: 'HEAD', headers: { ...TUS, ...auth } }),
    'API 200': await fetch(`${ctx.freight.url}/api/uploads`, { headers: auth }),
    'API 404': await fetch(`${ctx.freight.url}/api/uploads/nope`, { headers: auth }),
  };
}

describe('one CORS policy', () => {
  test('an allowed origin gets exactly one Allow-Origin (its own), Vary: Origin and the same exposed headers on every answer', async () => {
    const exposed = new Set<string>();
    for (const [name, res] of Object.entries(await answers(ALLOWED))) {
      expect(res.headers.get('access-control-allow-origin'), name).toBe(ALLOWED);
      expect(res.headers.get('vary') ?? '', name).toMatch(/Origin/i);
      exposed.add(res.headers.get('access-control-expose-headers') ?? '');
    }
    expect(exposed.size).toBe(1);
    const [list] = [...exposed];
    for (const header of [
      'Location',
      'Upload-Offset',
      'Upload-Length',
      'Upload-Expires',
      'Freight-Upload-Status',
      'Retry-After',
      'Tus-Resumable',
    ]) {
      expect(list).toContain(header);
    }
  });

  test('another origin gets no Allow-Origin at all, from tus or from the API', async () => {
    for (const [name, res] of Object.entries(await answers('https://evil.example.com'))) {
      expect(res.headers.get('access-control-allow-origin'), name).toBeNull();
    }
  });

  test('a preflight is answered alike for tus and the API; a plain OPTIONS still reaches tus', async () => {
    for (const path of ['/files/some-id', '/api/uploads']) {
      const res = await fetch(`${ctx.freight.url}${path}`, {
        method: 'OPTIONS',
        headers: {
          Origin: ALLOWED,
          'Access-Control-Request-Method': 'PATCH',
          'Access-Control-Request-Headers': 'authorization,upload-offset',
        },
      });
      expect(res.status, path).toBe(204);
      expect(res.headers.get('access-control-allow-origin'), path).toBe(ALLOWED);
      expect(res.headers.get('access-control-allow-methods'), path).toMatch(/PATCH/);
      expect(res.headers.get('access-control-allow-headers'), path).toMatch(/Upload-Offset/);
    }
    const discovery = await fetch(`${ctx.freight.url}/files/`, { method: 'OPTIONS' });
    expect(discovery.status).toBe(204);
    expect(discovery.headers.get('tus-version')).toBe('1.0.0');
    expect(discovery.headers.get('tus-extension')).toMatch(/creation/);
  });
});
