/**
 * Presigned UploadPart URLs. Each URL binds the part's exact Content-Length (so S3 refuses a longer or shorter
 * body) and, when the client gives the part's MD5, its Content-MD5 (so S3 refuses corrupted bytes: BadDigest).
 *
 * This is the hottest work of the direct path (one URL per part, thousands per upload), and the SDK's signer
 * costs ~45 µs per URL plus a run of its whole middleware stack per batch. So the SDK is asked once per object
 * key for the URL's shape (endpoint, bucket addressing, acceleration), and each part is signed here with SigV4
 * query authentication (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html): one
 * SHA-256 and one HMAC per URL with the day's signing key. The tests check the URLs against the SDK's own.
 */
import { createHash, createHmac } from 'node:crypto';
import { UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

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

/** RFC 3986 encoding, as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ percent-encoded. */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();

/** Where the URLs of one object go, as the SDK resolves it (endpoint, path or virtual-host style, acceleration). */
interface UrlShape {
  origin: string;
  host: string;
  /** The canonical (already encoded) path. */
  path: string;
}

/** Shapes of the keys signed lately: a batch of parts of the same upload reuses its key's shape. */
const SHAPES_KEPT = 1024;

export class PartPresigner {
  private readonly shapes = new Map<string, UrlShape>();
  private signingKey: { scope: string; secret: string; key: Buffer } | undefined;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    /** PRESIGN_EXPIRES: how long a signed URL can be used. */
    readonly expiresInSeconds: number,
  ) {}

  async sign(key: string, uploadId: string, parts: readonly PartToSign[], now = new Date()): Promise<SignedPart[]> {
    if (parts.length === 0) return [];
    const shape = await this.shape(key, uploadId);
    const credentials = await this.client.config.credentials();
    const region = await this.client.config.region();
    const amzDate = now
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}/, '');
    const scope = `${amzDate.slice(0, 8)}/${region}/s3/aws4_request`;
    const signingKey = this.keyFor(scope, credentials.secretAccessKey);
    const expiresAt = new Date(now.getTime() + this.expiresInSeconds * 1000).toISOString();

    return parts.map((part): SignedPart => {
      // Canonical headers, sorted by name: what the client's PUT must carry exactly.
      const headers: Array<[string, string]> = [];
      if (part.size !== undefined) headers.push(['content-length', String(part.size)]);
      if (part.md5) headers.push(['content-md5', part.md5]);
      headers.push(['host', shape.host]);
      const signedHeaders = headers.map(([name]) => name).join(';');
      const query: Array<[string, string]> = [
        ['X-Amz-Algorithm', 'AWS4-HMAC-SHA256'],
        ['X-Amz-Content-Sha256', 'UNSIGNED-PAYLOAD'],
        ['X-Amz-Credential', `${credentials.accessKeyId}/${scope}`],
        ['X-Amz-Date', amzDate],
        ['X-Amz-Expires', String(this.expiresInSeconds)],
        ...(credentials.sessionToken
          ? ([['X-Amz-Security-Token', credentials.sessionToken]] as Array<[string, string]>)
          : []),
        ['X-Amz-SignedHeaders', signedHeaders],
        ['partNumber', String(part.partNumber)],
        ['uploadId', uploadId],
        ['x-id', 'UploadPart'],
      ];
      // Parameters sorted by name (by code point: upper case first, as listed above).
      const canonicalQuery = query.map(([name, value]) => `${uriEncode(name)}=${uriEncode(value)}`).join('&');
      const canonicalRequest = [
        'PUT',
        shape.path,
        canonicalQuery,
        headers.map(([name, value]) => `${name}:${value}\n`).join(''),
        signedHeaders,
        'UNSIGNED-PAYLOAD',
      ].join('\n');
      const stringToSign = [
        'AWS4-HMAC-SHA256',
        amzDate,
        scope,
        createHash('sha256').update(canonicalRequest).digest('hex'),
      ].join('\n');
      const signature = hmac(signingKey, stringToSign).toString('hex');
      return {
        partNumber: part.partNumber,
        size: part.size ?? null,
        url: `${shape.origin}${shape.path}?${canonicalQuery}&X-Amz-Signature=${signature}`,
        expiresAt,
        headers: part.md5 ? { 'Content-MD5': part.md5 } : {},
      };
    });
  }

  /** The SDK's URL for the key, once, stripped to its shape. */
  private async shape(key: string, uploadId: string): Promise<UrlShape> {
    const known = this.shapes.get(key);
    if (known) return known;
    const command = new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: 1 });
    const url = new URL(await getSignedUrl(this.client, command, { expiresIn: this.expiresInSeconds }));
    const shape = { origin: url.origin, host: url.host, path: url.pathname };
    if (this.shapes.size >= SHAPES_KEPT) this.shapes.delete(this.shapes.keys().next().value!);
    this.shapes.set(key, shape);
    return shape;
  }

  /** kSigning = HMAC chain over the date, region and service with the secret; the same all day. */
  private keyFor(scope: string, secret: string): Buffer {
    if (this.signingKey?.scope !== scope || this.signingKey.secret !== secret) {
      const [date, region, service, terminator] = scope.split('/') as [string, string, string, string];
      const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), terminator);
      this.signingKey = { scope, secret, key };
    }
    return this.signingKey.key;
  }
}
