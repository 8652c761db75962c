/**
 * OPTIONS /files: what a tus client may ask before it starts ("A successful response indicated by the 204 No
 * Content status MUST contain the Tus-Version header. It MAY include the Tus-Extension and Tus-Max-Size
 * headers"). Preflights (with Access-Control-Request-Method) never get here: CORS answers them (src/http/cors.ts).
 */
import { TUS_RESUMABLE } from '@tus/utils';
import { CHECKSUM_ALGORITHMS } from './checksum.js';
import { TUS_EXTENSIONS } from './upload-record.js';

export function discoveryHeaders(maxUploadSize: number): Record<string, string> {
  return {
    'Tus-Resumable': TUS_RESUMABLE,
    'Tus-Version': TUS_RESUMABLE,
    'Tus-Extension': TUS_EXTENSIONS.join(','),
    'Tus-Max-Size': String(maxUploadSize),
    // checksum: "The Tus-Checksum-Algorithm header MUST be included in the response to an OPTIONS request."
    'Tus-Checksum-Algorithm': Object.keys(CHECKSUM_ALGORITHMS).join(','),
  };
}
