/**
 * Presigned UploadPart URLs. Each URL binds the part's exact Content-Length (so S3 refuses a longer or shorter
 * body) and, when the client gives the part's MD5, its Content-MD5 (so S3 refuses corrupted bytes: BadDigest).
 *
 * The SDK's getSignedUrl runs the whole middleware stack for every URL (~0.5 ms); a batch of parts shares one
 * such call to learn the URL shape (endpoint, bucket addressing, acceleration) and then signs each part with
 * SigV4 directly, which is what getSignedUrl does in the end.
 */
import { UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { S3RequestPresigner, getSignedUrl } from '@aws-sdk/s3-request-presigner';

type PresignRequest = Parameters<S3RequestPresigner['presign']>[0];

export interface PartToSign {
  partNumber: number;
  /** The exact body length the URL accepts; undefined: any (Companion-style uploads of unknown size). */
  size: number | undefined;
  /** base64 MD5 of the part; the URL then requires the same Content-MD5 header. */
  md5?: string | undefined;
}

export interface SignedPart {
  partNumber: number;
  size: number | null;
  url: string;
  expiresAt: string;
  /** Headers the client must send with its PUT (Content-MD5 when bound). Content-Length is set by any HTTP client. */
  headers: Record<string, string>;
}

function formatUrl(request: PresignRequest): string {
  const query = Object.entries(request.query ?? {})
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`)
    .join('&');
  const port = request.port ? `:${request.port}` : '';
  return `${request.protocol}//${request.hostname}${port}${request.path}?${query}`;
}

export class PartPresigner {
  private readonly signer: S3RequestPresigner;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly expiresInSeconds: number,
  ) {
    this.signer = new S3RequestPresigner({ ...client.config });
  }

  async sign(key: string, uploadId: string, parts: readonly PartToSign[], now = new Date()): Promise<SignedPart[]> {
    if (parts.length === 0) return [];
    const shape = new URL(
      await getSignedUrl(this.client, new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: 1 }), {
        expiresIn: this.expiresInSeconds,
        signingDate: now,
      }),
    );
    const expiresAt = new Date(now.getTime() + this.expiresInSeconds * 1000).toISOString();
    return Promise.all(
      parts.map(async (part) => {
        const headers: Record<string, string> = { host: shape.host };
        if (part.size !== undefined) headers['content-length'] = String(part.size);
        if (part.md5) headers['content-md5'] = part.md5;
        const request: PresignRequest = {
          method: 'PUT',
          protocol: shape.protocol,
          hostname: shape.hostname,
          port: shape.port ? Number(shape.port) : undefined,
          path: shape.pathname,
          query: { partNumber: String(part.partNumber), uploadId, 'x-id': 'UploadPart' },
          headers,
        };
        const signed = await this.signer.presign(request, { expiresIn: this.expiresInSeconds, signingDate: now });
        const clientHeaders: Record<string, string> = part.md5 ? { 'Content-MD5': part.md5 } : {};
        return {
          partNumber: part.partNumber,
          size: part.size ?? null,
          url: formatUrl(signed),
          expiresAt,
          headers: clientHeaders,
        };
      }),
    );
  }
}
