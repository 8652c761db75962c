/**
 * Download links: a URL for one completed upload that works without the owner's token, for PRESIGN_EXPIRES, so
 * that a browser (or curl, or a download manager) fetches the bytes itself, straight to disk, with ranges and
 * resumption, instead of a page holding the file in memory. Asked for with the token (POST
 * /api/uploads/:id/download-link).
 *
 * On S3 the link is the presigned GET the redirect of the download routes gives (S3 checks it). On the local file
 * store it is Freight's own `GET /downloads/:id?expires=…&signature=…`: an HMAC-SHA256 of the upload id and the
 * expiry time, keyed by a key derived from AUTH_JWT_SECRET (so every instance checks what any instance signed),
 * never a bearer token: a link in a browser's history or a proxy's log opens that one file until it expires, and
 * nothing else.
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { AuthConfig } from '../config/index.js';
import type { FileUpload } from '../db/schema.js';
import { conflict, linkRefused } from '../errors.js';
import type { DownloadStorage } from './storage.js';
import { isCompleted } from '../lifecycle.js';

export interface DownloadLink {
  url: string;
  expiresAt: Date;
}

/** Where Freight's own links live (the file store): GET|HEAD /downloads/:id?expires=<unix seconds>&signature=… */
export const LINK_PATH = '/downloads';

/**
 * The key links are signed with, derived from the token secret with a label of its own (HKDF), so that a link's
 * signature is never a token's. Without authentication there is no secret, and no credential for a link to stand
 * in for: a key of this process's own (links then open on the instance that made them).
 */
export async function linkKey(auth: AuthConfig): Promise<Buffer> {
  let secret: string | undefined;
  if (auth.mode === 'jwt') secret = auth.secret;
  // The development secret exists by now: the authenticator created it at start.
  else if (auth.mode === 'dev-secret') secret = (await readFile(auth.secretFile, 'utf8')).trim();
  if (secret === undefined) return randomBytes(32);
  return Buffer.from(hkdfSync('sha256', secret, '', 'freight download links v1', 32));
}

export class DownloadLinks {
  constructor(
    private readonly storage: DownloadStorage,
    private readonly key: Buffer,
    private readonly lifetimeMs: number,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** A link to a completed upload's bytes; `base`: this server as the client reaches it (PUBLIC_URL, or Host). */
  async create(upload: FileUpload, base: string): Promise<DownloadLink> {
    if (!isCompleted(upload.status)) throw conflict('the upload is not complete yet; download it once it is');
    const now = this.now();
    if (this.storage.kind === 'redirect') {
      return {
        url: await this.storage.url(upload),
        expiresAt: new Date(now.getTime() + this.storage.expiresInSeconds * 1000),
      };
    }
    // Whole seconds, as the URL says it.
    const expires = Math.floor((now.getTime() + this.lifetimeMs) / 1000);
    const query = new URLSearchParams({ expires: String(expires), signature: this.signature(upload.id, expires) });
    return {
      url: `${base}${LINK_PATH}/${encodeURIComponent(upload.id)}?${query}`,
      expiresAt: new Date(expires * 1000),
    };
  }

  /** Whether a link is one this server signed for upload `id` and has not expired; throws ERR_LINK_REFUSED if not. */
  check(id: string, expires: string, signature: string): void {
    const given = Buffer.from(signature, 'base64url');
    const expected = Buffer.from(this.signature(id, Number(expires)), 'base64url');
    // The signature first: an altered expiry, or another upload's id, is a wrong signature, not "expired".
    if (!/^\d{1,12}$/.test(expires) || given.length !== expected.length || !timingSafeEqual(given, expected))
      throw linkRefused('the download link is not valid for this upload (altered, or for another upload)');
    const expiresAt = new Date(Number(expires) * 1000);
    if (expiresAt <= this.now())
      throw linkRefused(`the download link expired at ${expiresAt.toISOString()}; ask for a new one`);
  }

  private signature(id: string, expires: number): string {
    return createHmac('sha256', this.key).update(`${id}\n${expires}`).digest('base64url');
  }
}
