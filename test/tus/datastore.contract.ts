/**
 * The DataStore contract: what @tus/server asks of a data store, held against each of Freight's stores.
 *
 * The cases follow tus-node-server's shared store tests (packages/utils/src/test/stores.ts, run by every official
 * store), written anew for Freight: upload ids are UUIDs, every upload is registered with the upload-state
 * service before the store creates it (as the tus POST hook does), and sizes are large enough that an S3 store
 * writes several parts. Only what the DataStore interface promises is asserted: offsets, sizes, metadata, the
 * bytes read back, and errors. Never where or how a store keeps things, so a rewritten store is held to the
 * same cases unchanged.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { type DataStore, ERRORS, Upload } from '@tus/utils';
import { afterAll, beforeAll, describe, expect, test, type TestContext } from 'vitest';
import { toHttpAnswer } from '../../src/errors.js';
import { fromTusUtils } from '../../src/tus/reply.js';
import { MiB, eventually, randomData, rejectionOf, sha256 } from '../helpers/harness.js';

export interface StoreUnderTest {
  /** Built with an upload expiry of UPLOAD_EXPIRY_MS, so that the expiration cases can wait it out. */
  store: DataStore;
  /**
   * Freight's stores act on uploads the upload-state service knows: insert the row (as the tus POST hook does)
   * before store.create.
   */
  register(upload: Upload): Promise<void>;
  teardown(): Promise<void>;
}

/** The upload expiry every store under test is built with. */
export const UPLOAD_EXPIRY_MS = 2_000;

/** The cases a store can be known to fail (see ContractOptions). */
export type ContractCase =
  | 'removing an upload that was never created rejects with 404'
  | 'a removed upload is gone'
  | 'the empty body of a zero-byte upload is written'
  | 'an unfinished upload past its expiry is gone after deleteExpired'
  | 'a finished upload outlives its expiry';

export interface ContractOptions {
  /**
   * Cases this store fails because of a known defect, each with the defect named: they run as test.fails, so the
   * suite stays green while the defect stands and turns red once it is fixed (then remove the entry).
   */
  knownDefects?: Partial<Record<ContractCase, string>>;
}

/** 12 MiB and an odd tail: with 5 MiB parts, three parts of which the last is short. */
const TOTAL = 12 * MiB + 321;
/** PATCH-sized pieces of TOTAL: exactly one part, then less than S3's 5 MiB minimum, then the rest. */
const CHUNKS = [5 * MiB, 3 * MiB + 7, 4 * MiB + 314];
/** What a socket hands over at a time. */
const WIRE_CHUNK = 64 * 1024;

function* pieces(data: Buffer): Generator<Buffer> {
  for (let at = 0; at < data.length; at += WIRE_CHUNK) yield data.subarray(at, at + WIRE_CHUNK);
}

/** A request body carrying `data`. */
const body = (data: Buffer): Readable => Readable.from(pieces(data));

/** A request body that breaks (the client went away) after `data`. */
function brokenBody(data: Buffer): Readable {
  return Readable.from(
    (function* () {
      yield* pieces(data);
      throw new Error('the client went away');
    })(),
  );
}

interface ReadableStore extends DataStore {
  read(id: string): Readable | Promise<Readable>;
}

/** Every byte a store holds for a finished upload, through its read(id) (what GET /files/:id serves). */
async function readBack(store: DataStore, id: string): Promise<Buffer> {
  const read = (store as Partial<ReadableStore>).read;
  if (typeof read !== 'function') throw new Error('the store under test has no read(id)');
  const chunks: Buffer[] = [];
  for await (const chunk of await read.call(store, id)) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** The HTTP status a client would get for `error` (Freight maps every error through one function). */
const statusOf = (error: unknown): number => toHttpAnswer(fromTusUtils(error)).status;

export function dataStoreContract(
  name: string,
  setup: () => Promise<StoreUnderTest>,
  options: ContractOptions = {},
): void {
  describe(`DataStore contract: ${name}`, () => {
    let sut: StoreUnderTest;
    beforeAll(async () => {
      sut = await setup();
    });
    afterAll(async () => {
      await sut?.teardown();
    });

    /** A case, run as test.fails when the store is known to fail it. */
    function knownCase(id: ContractCase, fn: (context: TestContext) => Promise<void>): void {
      const defect = options.knownDefects?.[id];
      if (defect) test.fails(`${id} (fails: ${defect})`, fn);
      else test(id, fn);
    }

    /** Registers and creates an upload, as a tus POST does. */
    async function created(fields: { size?: number; metadata?: Upload['metadata'] } = {}): Promise<Upload> {
      const upload = new Upload({ id: randomUUID(), offset: 0, ...fields });
      await sut.register(upload);
      return sut.store.create(upload);
    }

    async function expectGone(id: string): Promise<void> {
      expect([404, 410]).toContain(statusOf(await rejectionOf(sut.store.getUpload(id))));
    }

    async function expectReadsBack(id: string, data: Buffer): Promise<void> {
      const stored = await readBack(sut.store, id);
      expect(stored.length).toBe(data.length);
      expect(sha256(stored)).toBe(sha256(data));
    }

    describe('extensions', () => {
      test('the store has every extension it claims, and only those', () => {
        const { store } = sut;
        for (const extension of store.extensions) expect(store.hasExtension(extension)).toBe(true);
        expect(store.hasExtension('concatenation')).toBe(store.extensions.includes('concatenation'));
      });

      // Freight's tus server offers creation, defer-length and termination: its store must carry them.
      test('the store claims creation, creation-defer-length and termination', () => {
        for (const extension of ['creation', 'creation-defer-length', 'termination']) {
          expect(sut.store.hasExtension(extension)).toBe(true);
        }
      });
    });

    // Not carried over: the check that create() fills in `upload.storage` (its path and type). That describes where
    // a store keeps the bytes, which nothing in Freight reads and a rewritten store may keep elsewhere.
    describe('create', () => {
      test('an upload of known size is created empty, with its size', async () => {
        const upload = await created({ size: TOTAL });
        expect(upload).toBeInstanceOf(Upload);
        const found = await sut.store.getUpload(upload.id);
        expect(found).toMatchObject({ id: upload.id, size: TOTAL, offset: 0 });
        expect(found.sizeIsDeferred).toBe(false);
      });

      test('an upload of deferred length is created empty, its length still deferred', async () => {
        const upload = await created();
        const found = await sut.store.getUpload(upload.id);
        expect(found).toMatchObject({ id: upload.id, offset: 0 });
        expect(found.size).toBeUndefined();
        expect(found.sizeIsDeferred).toBe(true);
      });

      test('metadata comes back as sent: keys without a value, and non-ASCII text', async () => {
        const metadata = { filename: '世界_plan (final).pdf', filetype: 'application/pdf', is_confidential: null };
        const upload = await created({ size: 1000, metadata });
        expect((await sut.store.getUpload(upload.id)).metadata).toEqual(metadata);
      });

      test('getUpload of an upload that was never created rejects with FILE_NOT_FOUND', async () => {
        await expect(sut.store.getUpload(randomUUID())).rejects.toEqual(ERRORS.FILE_NOT_FOUND);
      });
    });

    describe('write', () => {
      test('a write resolves the new offset, getUpload reports it, and the next write continues there', async () => {
        const data = randomData(TOTAL);
        const upload = await created({ size: TOTAL });
        const first = 7 * MiB + 3;
        expect(await sut.store.write(body(data.subarray(0, first)), upload.id, 0)).toBe(first);
        expect((await sut.store.getUpload(upload.id)).offset).toBe(first);
        expect(await sut.store.write(body(data.subarray(first)), upload.id, first)).toBe(TOTAL);
        expect(await sut.store.getUpload(upload.id)).toMatchObject({ offset: TOTAL, size: TOTAL });
        await expectReadsBack(upload.id, data);
      });

      test('an upload written in several chunks, some under 5 MiB, reads back byte for byte', async () => {
        const data = randomData(TOTAL);
        const upload = await created({ size: TOTAL, metadata: { filename: 'chunks.bin' } });
        let offset = 0;
        for (const size of CHUNKS) {
          const end = await sut.store.write(body(data.subarray(offset, offset + size)), upload.id, offset);
          expect(end).toBe(offset + size);
          offset = end;
          expect((await sut.store.getUpload(upload.id)).offset).toBe(offset);
        }
        expect(offset).toBe(TOTAL);
        await expectReadsBack(upload.id, data);
      });

      test('an upload written in one go reads back byte for byte', async () => {
        const data = randomData(TOTAL);
        const upload = await created({ size: TOTAL });
        expect(await sut.store.write(body(data), upload.id, 0)).toBe(TOTAL);
        expect(await sut.store.getUpload(upload.id)).toMatchObject({ offset: TOTAL, size: TOTAL });
        await expectReadsBack(upload.id, data);
      });

      test('a write to an upload that was never created rejects', async () => {
        await expect(sut.store.write(body(randomData(1024)), randomUUID(), 0)).rejects.toBeDefined();
      });

      test('a write whose body breaks rejects, and the upload resumes from the offset getUpload reports', async () => {
        const data = randomData(TOTAL);
        const upload = await created({ size: TOTAL });
        const sent = 6 * MiB;
        await expect(sut.store.write(brokenBody(data.subarray(0, sent)), upload.id, 0)).rejects.toBeDefined();
        const { offset } = await sut.store.getUpload(upload.id);
        expect(offset).toBeGreaterThanOrEqual(0);
        expect(offset).toBeLessThanOrEqual(sent);
        expect(await sut.store.write(body(data.subarray(offset)), upload.id, offset)).toBe(TOTAL);
        await expectReadsBack(upload.id, data);
      });
    });

    describe('zero-byte uploads', () => {
      // @tus/server writes nothing for a zero-byte upload created without a body: it is finished once created.
      test('a zero-byte upload is finished once created and reads back empty', async () => {
        const upload = await created({ size: 0 });
        expect(await sut.store.getUpload(upload.id)).toMatchObject({ offset: 0, size: 0 });
        expect((await readBack(sut.store, upload.id)).length).toBe(0);
      });

      // A creation-with-upload POST of a zero-byte file (Upload-Length: 0 with a Content-Type) makes @tus/server
      // write the empty body right after create.
      knownCase('the empty body of a zero-byte upload is written', async () => {
        const upload = await created({ size: 0 });
        expect(await sut.store.write(body(Buffer.alloc(0)), upload.id, 0)).toBe(0);
        expect(await sut.store.getUpload(upload.id)).toMatchObject({ offset: 0, size: 0 });
        expect((await readBack(sut.store, upload.id)).length).toBe(0);
      });
    });

    describe('declareUploadLength (creation-defer-length)', () => {
      test('a declared length becomes the upload size', async () => {
        const upload = await created({ metadata: { filename: 'later.bin' } });
        await sut.store.declareUploadLength(upload.id, 10);
        const found = await sut.store.getUpload(upload.id);
        expect(found).toMatchObject({ size: 10, offset: 0 });
        expect(found.sizeIsDeferred).toBe(false);
      });

      // tus-js-client with uploadLengthDeferred declares the length in its last PATCH, after bytes were written.
      test('a length declared after some bytes were written: the rest completes the upload', async () => {
        const data = randomData(TOTAL);
        const upload = await created();
        const first = 6 * MiB;
        expect(await sut.store.write(body(data.subarray(0, first)), upload.id, 0)).toBe(first);
        expect(await sut.store.getUpload(upload.id)).toMatchObject({ offset: first, size: undefined });
        await sut.store.declareUploadLength(upload.id, TOTAL);
        expect(await sut.store.getUpload(upload.id)).toMatchObject({ offset: first, size: TOTAL });
        expect(await sut.store.write(body(data.subarray(first)), upload.id, first)).toBe(TOTAL);
        await expectReadsBack(upload.id, data);
      });

      test('declaring the length of an upload that was never created rejects', async () => {
        await expect(sut.store.declareUploadLength(randomUUID(), 10)).rejects.toBeDefined();
      });
    });

    // Not carried over: removing an upload while a write to it is still streaming. @tus/server never lets the two
    // meet in a store: DELETE takes the upload's lock, which first asks the PATCH holding it to stop.
    describe('remove (termination)', () => {
      knownCase('a removed upload is gone', async () => {
        const upload = await created({ size: TOTAL });
        // One whole part and a piece under the 5 MiB minimum are stored when the client terminates.
        const data = randomData(5 * MiB + 11);
        await sut.store.write(body(data), upload.id, 0);
        await sut.store.remove(upload.id);
        await expectGone(upload.id);
      });

      knownCase('removing an upload that was never created rejects with 404', async () => {
        expect(statusOf(await rejectionOf(sut.store.remove(randomUUID())))).toBe(404);
      });
    });

    // Freight does not call deleteExpired today: expiry is decided from each upload's expires_at in Postgres (410
    // after it). These cases hold the stores to what they claim with the `expiration` extension all the same.
    describe('expiration', () => {
      const unfinishedData = randomData(1024);
      const finishedData = randomData(4096);
      let unfinished: Upload;
      let finished: Upload;
      let fresh: Upload;
      let deleted: number;

      beforeAll(async () => {
        if (!sut.store.hasExtension('expiration')) return;
        unfinished = await created({ size: 1_000_000 });
        await sut.store.write(body(unfinishedData), unfinished.id, 0);
        finished = await created({ size: finishedData.length });
        await sut.store.write(body(finishedData), finished.id, 0);
        // Until the store finds something past the expiry by its storage's clock (which may count in whole
        // seconds): the condition, not a sleep; the bound only ends a hang.
        deleted = 0;
        await eventually(async () => {
          deleted += await sut.store.deleteExpired();
          const answer = await sut.store.getUpload(unfinished.id).then(
            () => undefined,
            (error: unknown) => statusOf(error),
          );
          return answer === 404 || answer === 410 ? true : undefined;
        }, UPLOAD_EXPIRY_MS + 10_000);
        // A young upload beside them, through one more deleteExpired.
        fresh = await created({ size: 100 });
        await sut.store.deleteExpired();
      }, 30_000);

      const skipUnlessExpiring = (context: TestContext) =>
        context.skip(!sut.store.hasExtension('expiration'), 'the store does not claim the expiration extension');

      test('getExpiration reports the expiry the store was built with', (context) => {
        skipUnlessExpiring(context);
        expect(sut.store.getExpiration()).toBe(UPLOAD_EXPIRY_MS);
      });

      // DataStore says deleteExpired returns the number of uploads deleted; S3Store counts the objects it deleted
      // (several per upload), so only "at least one" is asserted.
      test('deleteExpired reports that it deleted something', (context) => {
        skipUnlessExpiring(context);
        expect(deleted).toBeGreaterThanOrEqual(1);
      });

      knownCase('an unfinished upload past its expiry is gone after deleteExpired', async (context) => {
        skipUnlessExpiring(context);
        await expectGone(unfinished.id);
      });

      knownCase('a finished upload outlives its expiry', async (context) => {
        skipUnlessExpiring(context);
        expect(await sut.store.getUpload(finished.id)).toMatchObject({ offset: finishedData.length });
        await expectReadsBack(finished.id, finishedData);
      });

      test('an upload younger than the expiry is kept', async (context) => {
        skipUnlessExpiring(context);
        expect(await sut.store.getUpload(fresh.id)).toMatchObject({ offset: 0, size: 100 });
      });
    });
  });
}
