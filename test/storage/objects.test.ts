/** S3Objects' bodies from temp files, without S3: what happens when the file is not there. */
import path from 'node:path';
import os from 'node:os';
import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, test } from 'vitest';
import { S3Objects } from '../../src/storage/objects.js';

describe('a body from a temp file', () => {
  test('a file that is gone fails the send, and nothing is left to fail later (no uncaught error)', async () => {
    // A client that refuses at once, before reading any of the body: the stream it was given is let go.
    let sends = 0;
    const refusing = {
      send: async () => {
        sends++;
        throw Object.assign(new Error('refused'), { name: 'AccessDenied' });
      },
    } as unknown as S3Client;
    const objects = new S3Objects(refusing, refusing, 'bucket');
    const missing = { path: path.join(os.tmpdir(), `freight-missing-${process.pid}-${Date.now()}`), size: 10 };
    await expect(objects.uploadPart('key', 'upload', 1, missing)).rejects.toMatchObject({ code: 'ENOENT' });
    // Opened before the send: no send was made with a stream that could still fail on its own later.
    expect(sends).toBe(0);
  });
});
