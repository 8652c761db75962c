/**
 * tus concatenation, what tus-js-client's `parallelUploads` rests on: partial uploads are created like any other
 * (with Upload-Concat: partial, recorded on the row; routes/post.ts), and a final upload is made of them. It is
 * recorded here and assembled in the background (assembly.ts), by the store (S3 joins the partials itself where
 * it can); until it is, it is `pending` and a HEAD shows no offset.
 */
import { randomUUID } from 'node:crypto';
import type { FileUpload } from '../db/schema.js';
import { badRequest, notFound, payloadTooLarge } from '../errors.js';
import { sumOfSizes } from '../uploads/parts.js';
import type { UploadService } from '../uploads/service.js';
import { isUploadId } from '../db/ids.js';
import { isCompleted } from '../lifecycle.js';
import type { FinalAssemblies } from './assembly.js';
import { fileFacts } from './metadata.js';
import type { FreightStore } from './upload-record.js';

export interface ConcatDeps {
  uploads: UploadService;
  store: FreightStore;
  assemblies: FinalAssemblies;
  maxUploadSize: number;
}

/** "The partial uploads URLs MAY be absolute or relative": the upload id is the last segment of /files/<id>. */
function uploadIdOfUrl(url: string): string {
  let pathname: string;
  try {
    pathname = new URL(url, 'http://relative.invalid').pathname;
  } catch {
    throw badRequest(`Upload-Concat names "${url}", which is not a URL`);
  }
  const match = /^\/files\/([^/]+)\/?$/.exec(pathname);
  if (!match?.[1] || !isUploadId(match[1]))
    throw notFound(`Upload-Concat names "${url}", which is no upload of this server`);
  return match[1].toLowerCase();
}

/**
 * The upload ids the URLs of a final upload's Upload-Concat name, in order. Two URLs that name one upload (one
 * absolute, one relative, say) are one partial named twice: 400, as protocol.ts answers a URL written twice.
 */
export function partialIdsOf(urls: readonly string[]): string[] {
  const seen = new Map<string, string>();
  return urls.map((url) => {
    const id = uploadIdOfUrl(url);
    const earlier = seen.get(id);
    if (earlier !== undefined) {
      throw badRequest(`Upload-Concat names one partial upload twice (${earlier} and ${url}); name each partial once`);
    }
    seen.set(id, url);
    return id;
  });
}

/**
 * The final upload of a concatenation (POST /files with Upload-Concat: final;<url> …), made of the caller's
 * finished partials, none of them part of another final upload: recorded now, assembled in the background.
 * Returns its id.
 */
export async function createFinalUpload(
  deps: ConcatDeps,
  userId: string,
  urls: readonly string[],
  metadata: Record<string, string> | null,
): Promise<string> {
  const { uploads } = deps;
  const ids = partialIdsOf(urls);
  const partials: FileUpload[] = [];
  for (const [index, id] of ids.entries()) {
    const url = urls[index]!;
    // Another user's partial upload does not exist for this one: 404.
    const partial = await uploads.access.getOwnedLive(userId, id, 'tus');
    if (partial.concat !== 'partial')
      throw badRequest(`${url} is not a partial upload (created with Upload-Concat: partial)`);
    // "This concatenation request SHOULD happen after all of the corresponding partial uploads are completed";
    // concatenating unfinished ones "MUST be explicitly announced by the Server" (concatenation-unfinished),
    // which Freight does not offer.
    if (!isCompleted(partial.status))
      throw badRequest(`partial upload ${url} is not complete; concatenate finished partial uploads`);
    partials.push(partial);
  }
  // "The length of the final upload MUST be the sum of the length of all partial uploads."
  const length = sumOfSizes(partials.map((partial) => ({ size: partial.totalSize ?? 0 })));
  if (length > deps.maxUploadSize) {
    throw payloadTooLarge(
      `the partial uploads add up to ${length} bytes, over this server's maximum of ${deps.maxUploadSize}`,
    );
  }
  const id = randomUUID();
  // "They MAY however be used multiple times to form a final resource": Freight lets a partial make one final
  // upload at a time (one being assembled or completed), so that one upload's bytes cannot be multiplied; a
  // partial of a final that was given up or terminated is free again. Checked with the insert, in one transaction.
  const urlOf = (partialId: string) => urls[ids.indexOf(partialId)] ?? partialId;
  await uploads.finals.create(
    {
      id,
      userId,
      protocol: 'tus',
      ...fileFacts(metadata),
      totalSize: length,
      storageKey: id,
      metadata,
      partSize: deps.store.partSizeFor(length),
      storedOffset: 0,
      concat: 'final',
      concatPartials: ids,
    },
    urlOf,
  );
  deps.assemblies.assemble(id);
  return id;
}
