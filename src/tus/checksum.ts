/**
 * tus checksum extension: "A Client MAY include the Upload-Checksum header in a PATCH request. Once the entire
 * request has been received, the Server MUST verify the uploaded chunk against the provided checksum using the
 * specified algorithm." The stores verify (src/tus/body.ts computes the digest); nothing of a PATCH whose
 * checksum does not match is recorded, so its bytes are discarded and the offset does not move.
 */
import { badRequest } from '../errors.js';

/** "The Server MUST support at least the SHA1 checksum algorithm identified by sha1." */
export const CHECKSUM_ALGORITHMS = { sha1: 20, md5: 16, sha256: 32 } as const;
export type ChecksumAlgorithm = keyof typeof CHECKSUM_ALGORITHMS;

export interface ExpectedChecksum {
  algorithm: ChecksumAlgorithm;
  digest: Buffer;
}

const isAlgorithm = (name: string): name is ChecksumAlgorithm => Object.hasOwn(CHECKSUM_ALGORITHMS, name);

/**
 * "The header MUST consist of the name of the used checksum algorithm and the Base64 encoded checksum separated
 * by a space." An algorithm the server does not support: "400 Bad Request".
 */
export function parseUploadChecksum(value: string | undefined): ExpectedChecksum | undefined {
  if (value === undefined) return undefined;
  const [algorithm, encoded, ...rest] = value.trim().split(' ');
  if (!algorithm || !encoded || rest.length > 0) {
    throw badRequest(`Upload-Checksum must be "<algorithm> <base64 digest>", got "${value}"`);
  }
  if (!isAlgorithm(algorithm)) {
    throw badRequest(
      `Upload-Checksum algorithm "${algorithm}" is not supported; use one of ${Object.keys(CHECKSUM_ALGORITHMS).join(', ')}`,
    );
  }
  const digest = Buffer.from(encoded, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || digest.length !== CHECKSUM_ALGORITHMS[algorithm]) {
    throw badRequest(
      `Upload-Checksum digest is not a base64 ${algorithm} digest (${CHECKSUM_ALGORITHMS[algorithm]} bytes)`,
    );
  }
  return { algorithm, digest };
}
