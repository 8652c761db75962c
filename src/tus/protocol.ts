/**
 * tus 1.0 header checks, run on every request before its route (src/tus/plugin.ts). Each check carries the
 * sentence of https://tus.io/protocols/resumable-upload it enforces; checks that need the upload are in its route.
 */
import { TUS_RESUMABLE } from '@tus/utils';
import { FreightError, badRequest, payloadTooLarge } from '../errors.js';
import { isSha256Hex } from '../uploads/digest.js';
import { parseUploadMetadata } from './metadata.js';

type Headers = Record<string, string | string[] | undefined>;

const header = (headers: Headers, name: string): string | undefined => {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
};

/** "The value MUST be a non-negative integer." (Upload-Offset, Upload-Length) */
function nonNegativeInteger(name: string, value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw badRequest(`${name} must be a non-negative integer, got "${value}"`);
  }
  return Number(value);
}

export function checkTusRequest(
  method: string,
  headers: Headers,
  maxSize: number,
  /** CONCAT_MAX_PARTIALS: the most partial uploads a final upload's Upload-Concat may name. */
  maxPartials = Number.POSITIVE_INFINITY,
): void {
  // OPTIONS is exempt from Tus-Resumable; GET is a download, outside the protocol.
  if (method === 'OPTIONS' || method === 'GET') return;

  // "The Tus-Resumable header MUST be included in every request and response except for OPTIONS requests.
  // If the version specified by the Client is not supported by the Server, it MUST respond with the
  // 412 Precondition Failed status and MUST include the Tus-Version header into the response."
  const version = header(headers, 'tus-resumable');
  if (version !== TUS_RESUMABLE) {
    throw new FreightError(
      'ERR_UNSUPPORTED_VERSION',
      version === undefined
        ? 'Tus-Resumable header required'
        : `unsupported Tus-Resumable "${version}"; this server speaks ${TUS_RESUMABLE}`,
      { 'Tus-Version': TUS_RESUMABLE },
    );
  }

  if (method === 'PATCH') checkPatch(headers, maxSize);
  if (method === 'POST') checkPost(headers, maxSize, maxPartials);
}

function checkPatch(headers: Headers, maxSize: number): void {
  // "All PATCH requests MUST use Content-Type: application/offset+octet-stream, otherwise the server SHOULD
  // return a 415 Unsupported Media Type status."
  const contentType = header(headers, 'content-type');
  if (contentType?.split(';')[0]?.trim().toLowerCase() !== 'application/offset+octet-stream') {
    throw new FreightError(
      'ERR_UNSUPPORTED_MEDIA_TYPE',
      `PATCH requests must use Content-Type: application/offset+octet-stream, got ${contentType ? `"${contentType}"` : 'none'}`,
    );
  }
  // "The Upload-Offset header's value MUST be equal to the current offset of the resource."
  // (A missing or malformed header is a bad request; a wrong number is the 409 tus answers itself.)
  const offset = header(headers, 'upload-offset');
  if (offset === undefined) throw badRequest('Upload-Offset header required');
  nonNegativeInteger('Upload-Offset', offset);
  // creation-defer-length: "the Client MUST set the Upload-Length header in the next PATCH request".
  const length = header(headers, 'upload-length');
  if (length !== undefined) checkLength(length, maxSize);
}

/** What an Upload-Concat header asks for: a partial upload, or the final one made of the uploads at `urls`. */
export type ConcatRequest = { kind: 'partial' } | { kind: 'final'; urls: string[] };

/**
 * "If the upload is a partial one, the header value MUST be partial. In the case of a final upload, its value
 * MUST be final followed by a semicolon and a space-separated list of partial upload URLs." Freight's own bounds
 * (each answered 400 before any upload is looked up): at most `maxPartials` URLs (CONCAT_MAX_PARTIALS), and each
 * partial named once. The spec lets a server use a partial "multiple times to form a final resource"; within one
 * final a repeat only multiplies the bytes one request makes the server copy and read (a 6 MiB partial named 300
 * times was a 1.8 GB final), so it is refused. (concat.ts also refuses two URLs that name one upload.)
 */
export function parseUploadConcat(
  value: string | undefined,
  maxPartials = Number.POSITIVE_INFINITY,
): ConcatRequest | undefined {
  if (value === undefined) return undefined;
  if (value === 'partial') return { kind: 'partial' };
  const match = /^final;(.*)$/.exec(value);
  const urls = match?.[1]?.trim().split(/ +/).filter(Boolean) ?? [];
  if (!match || urls.length === 0) {
    throw badRequest(`Upload-Concat must be "partial" or "final;<url> <url> …", got "${value}"`);
  }
  if (urls.length > maxPartials) {
    throw badRequest(
      `Upload-Concat names ${urls.length} partial uploads; this server joins at most ${maxPartials} into one final upload`,
    );
  }
  const repeated = urls.find((url, index) => urls.indexOf(url) !== index);
  if (repeated !== undefined) {
    throw badRequest(`Upload-Concat names ${repeated} more than once; name each partial upload once`);
  }
  return { kind: 'final', urls };
}

function checkPost(headers: Headers, maxSize: number, maxPartials: number): void {
  const concat = parseUploadConcat(header(headers, 'upload-concat'), maxPartials);
  if (concat?.kind === 'final') {
    // "The Client MUST NOT include the Upload-Length header in the final upload creation." (Its length is the sum
    // of its partials'.)
    if (header(headers, 'upload-length') !== undefined || header(headers, 'upload-defer-length') !== undefined) {
      throw badRequest(
        'a final upload takes no Upload-Length or Upload-Defer-Length: its length is the sum of its partial uploads',
      );
    }
    checkMetadata(headers);
    return;
  }

  const length = header(headers, 'upload-length');
  const defer = header(headers, 'upload-defer-length');
  // "The Client MUST send either Upload-Length or Upload-Defer-Length: 1"; not both.
  if (length === undefined && defer === undefined) {
    throw badRequest('Upload-Length or Upload-Defer-Length: 1 header required');
  }
  if (length !== undefined && defer !== undefined) {
    throw badRequest('send either Upload-Length or Upload-Defer-Length, not both');
  }
  // "Its value MUST be 1. If the length of an upload is not deferred, this header MUST be omitted."
  if (defer !== undefined && defer !== '1') throw badRequest(`Upload-Defer-Length must be 1, got "${defer}"`);
  if (length !== undefined) checkLength(length, maxSize);

  checkMetadata(headers);
}

function checkMetadata(headers: Headers): void {
  const metadata = header(headers, 'upload-metadata');
  const parsed = metadata === undefined ? {} : parseUploadMetadata(metadata);
  // Freight's own key: the digest the whole upload must have (checked at completion).
  if (parsed.sha256 !== undefined && !isSha256Hex(parsed.sha256)) {
    throw badRequest('Upload-Metadata sha256 must be the SHA-256 of the file in hex (64 digits)');
  }
}

function checkLength(value: string, maxSize: number): void {
  const length = nonNegativeInteger('Upload-Length', value);
  // "If the length of the upload exceeds the maximum, which MAY be specified using the Tus-Max-Size header,
  // the Server MUST respond with the 413 Request Entity Too Large status."
  if (length > maxSize) {
    throw payloadTooLarge(`Upload-Length ${length} exceeds this server's maximum of ${maxSize} bytes (Tus-Max-Size)`);
  }
}
