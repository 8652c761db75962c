/** GET /files/:id: a completed upload's bytes, under any file name, as data; nothing for anyone else. */
import { describe, expect, test } from 'vitest';
import { MiB, errorCodeOf, freightOnS3, randomData, sha256, tokenFor, uniqueUser } from '../helpers/harness.js';

const ctx = freightOnS3('freight-download');
const TUS = { 'Tus-Resumable': '1.0.0' };

async function upload(user: string, name: string, data: Buffer<ArrayBuffer>, complete = true): Promise<string> {
  const auth = { Authorization: `Bearer ${await tokenFor(user)}` };
  const created = await fetch(`${ctx.freight.url}/files/`, {
    method: 'POST',
    headers: {
      ...TUS,
      ...auth,
      'Upload-Length': String(data.length),
      'Upload-Metadata': `filename ${Buffer.from(name).toString('base64')},filetype ${Buffer.from('text/html').toString('base64')}`,
    },
  });
  const url = created.headers.get('location')!;
  if (complete) {
    const patched = await fetch(url, {
      method: 'PATCH',
      headers: { ...TUS, ...auth, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
      body: data,
    });
    expect(patched.status).toBe(204);
  }
  return url;
}

describe('downloads', () => {
  test.each(['plain.txt', 'отчёт 2026.pdf', '報告.txt', 'two\r\nlines.txt'])('a file named %j comes back byte-identical, as an attachment', async (name) => {
    const user = uniqueUser('dl');
    const data = randomData(6 * MiB + 5);
    const url = await upload(user, name, data);
    const res = await fetch(url, { headers: { Authorization: `Bearer ${await tokenFor(user)}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const disposition = res.headers.get('content-disposition')!;
    expect(decodeURIComponent(/filename\*=UTF-8''(.*)$/.exec(disposition)![1]!)).toBe(name);
    expect(sha256(new Uint8Array(await res.arrayBuffer()))).toBe(sha256(data));
  });

  test('an unfinished upload is 409, another user gets 404, a URL below an upload is 404', async () => {
    const user = uniqueUser('dl');
    const url = await upload(user, 'later.bin', randomData(100), false);
    const auth = { Authorization: `Bearer ${await tokenFor(user)}` };
    const early = await fetch(url, { headers: auth });
    expect(early.status).toBe(409);
    expect(await errorCodeOf(early)).toBe('ERR_UPLOAD_CONFLICT');
    expect((await fetch(url, { headers: { Authorization: `Bearer ${await tokenFor(uniqueUser('other'))}` } })).status).toBe(404);
    const nested = await fetch(`${url}/${url.split('/').pop()}`, {
      method: 'PATCH',
      headers: { ...TUS, ...auth, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
      body: 'x',
    });
    expect(nested.status).toBe(404);
    expect(await errorCodeOf(nested)).toBe('ERR_UPLOAD_NOT_FOUND');
  });
});
