/** Upload-Metadata: its syntax, and the file facts Freight reads from it. */
import { badRequest } from '../errors.js';

/**
 * "The Upload-Metadata request and response header MUST consist of one or more comma-separated key-value
 * pairs. The key and value MUST be separated by a space. The key MUST NOT contain spaces and commas and MUST NOT
 * be empty. The key SHOULD be ASCII encoded and the value MUST be Base64 encoded. All keys MUST be unique.
 * The value MAY be empty. In these cases, the space, which would normally separate the key and the value,
 * MAY be left out."
 */
export function parseUploadMetadata(value: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const pair of value.split(',')) {
    const [key, encoded, ...extra] = pair.split(' ');
    if (!key) throw badRequest('Upload-Metadata has an empty key');
    if (extra.length > 0) throw badRequest(`Upload-Metadata pair "${pair}" has more than a key and a value`);
    if (Object.hasOwn(result, key)) throw badRequest(`Upload-Metadata key "${key}" appears twice`);
    if (encoded !== undefined && encoded !== '' && !/^[A-Za-z0-9+/]*={0,2}$/.test(encoded)) {
      throw badRequest(`Upload-Metadata value of "${key}" is not Base64`);
    }
    if (encoded !== undefined && encoded.length % 4 !== 0) {
      throw badRequest(`Upload-Metadata value of "${key}" is not Base64 (its length is not a multiple of 4)`);
    }
    result[key] = encoded ? Buffer.from(encoded, 'base64').toString('utf8') : '';
  }
  return result;
}

/** "filename"/"filetype" (tus-js-client's convention) or "name"/"type" (Uppy's). */
export function fileFacts(metadata: Record<string, string | null> | null | undefined) {
  const pick = (...keys: string[]) => keys.map((key) => metadata?.[key]).find((value) => value) ?? null;
  return { filename: pick('filename', 'name'), mimeType: pick('filetype', 'type', 'contentType') };
}
