/**
 * OPTIONS /files: what a tus client may ask before it starts ("A successful response indicated by the 204 No
 * Content status MUST contain the Tus-Version header. It MAY include the Tus-Extension and Tus-Max-Size
 * headers"). Preflights (with Access-Control-Request-Method) never get here: CORS answers them (src/http/cors.ts).
 */
import { TUS_RESUMABLE } from '@tus/utils';
import type { FastifyInstance } from 'fastify';
import { CHECKSUM_ALGORITHMS } from '../checksum.js';
import type { TusDeps } from '../deps.js';
import { TUS_EXTENSIONS } from '../upload-record.js';
import { TUS_PATH } from '../urls.js';

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

export function optionsRoute(app: FastifyInstance, { config }: TusDeps): void {
  const headers = discoveryHeaders(config.maxUploadSize);
  for (const url of [TUS_PATH, `${TUS_PATH}/*`]) {
    app.options(url, async (_request, reply) => reply.code(204).headers(headers).send());
  }
}
