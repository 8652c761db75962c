/**
 * Where tus uploads live: the collection at /files, each upload at /files/<id>. The id is the last (and only)
 * segment; a path deeper than that names no upload.
 */
import type { FastifyRequest } from 'fastify';
import { notFound } from '../errors.js';

export const TUS_PATH = '/files';

/** The URL of an upload as clients reach it: under PUBLIC_URL behind a proxy, else from the request's Host. */
export function uploadUrl(publicUrl: string | undefined, request: FastifyRequest, id: string): string {
  return `${publicUrl ?? `${request.protocol}://${request.headers.host}`}${TUS_PATH}/${id}`;
}

/**
 * The upload a request under /files names: undefined for the collection (/files, /files/), 404 for anything
 * deeper than /files/<id>.
 */
export function uploadIdOf(request: FastifyRequest): string | undefined {
  const rest = (request.params as { '*'?: string } | undefined)?.['*']?.replace(/\/$/, '');
  if (!rest) return undefined;
  if (rest.includes('/')) throw notFound();
  return rest;
}
