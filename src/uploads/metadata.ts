/**
 * What an upload's metadata may be, on every path (tus Upload-Metadata, the direct API, Companion's routes): a
 * flat map of keys to strings, where null (JSON routes) is a key without a value (Uppy sends `relativePath: null`;
 * a tus key without a value arrives as an empty string). Every upload row keeps it, so it is bounded: at most
 * MAX_METADATA_KEYS keys of at most MAX_METADATA_KEY_SIZE bytes, each value at most METADATA_MAX_VALUE_SIZE bytes,
 * and all keys and values together at most METADATA_MAX_SIZE bytes (UTF-8). Keys follow tus's rule (not empty, no spaces or commas) and hold no
 * control characters. Nested objects, arrays, numbers and booleans are refused, never turned into strings (the JSON
 * routes check the shape with metadataOfJson before anything else: their schemas leave values alone, since Fastify's
 * validator would coerce a number to a string).
 */
import { badRequest } from '../errors.js';

export interface MetadataLimits {
  /** METADATA_MAX_SIZE: the bytes of all keys and values together. */
  maxSize: number;
  /** METADATA_MAX_VALUE_SIZE: the bytes of one value. */
  maxValueSize: number;
}

export const MAX_METADATA_KEYS = 32;
export const MAX_METADATA_KEY_SIZE = 128;

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const BAD_KEY = /[\s,\u0000-\u001f\u007f]/;

/** Why `metadata` cannot be kept (the 400's message), or undefined when it can. */
export function metadataProblem(
  metadata: Readonly<Record<string, unknown>> | null | undefined,
  limits: MetadataLimits,
): string | undefined {
  if (metadata === null || metadata === undefined) return undefined;
  if (typeof metadata !== 'object' || Array.isArray(metadata)) return 'metadata must be an object of string values';
  const entries = Object.entries(metadata);
  if (entries.length > MAX_METADATA_KEYS)
    return `metadata has ${entries.length} keys; at most ${MAX_METADATA_KEYS} are kept`;
  let total = 0;
  for (const [key, value] of entries) {
    const keySize = Buffer.byteLength(key);
    if (keySize === 0 || keySize > MAX_METADATA_KEY_SIZE || BAD_KEY.test(key)) {
      return `metadata key "${key.slice(0, 40)}" must be 1 to ${MAX_METADATA_KEY_SIZE} bytes without spaces, commas or control characters`;
    }
    if (value !== null && typeof value !== 'string') {
      return `metadata value of "${key}" must be a string (or null for a key without a value), not ${Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `a ${typeof value}`}`;
    }
    const valueSize = value === null ? 0 : Buffer.byteLength(value);
    if (valueSize > limits.maxValueSize) {
      return `metadata value of "${key}" has ${valueSize} bytes; this server keeps at most ${limits.maxValueSize} per value (METADATA_MAX_VALUE_SIZE)`;
    }
    total += keySize + valueSize;
  }
  if (total > limits.maxSize) {
    return `metadata has ${total} bytes of keys and values; this server keeps at most ${limits.maxSize} per upload (METADATA_MAX_SIZE)`;
  }
  return undefined;
}

const SHAPE_ONLY: MetadataLimits = { maxSize: Number.POSITIVE_INFINITY, maxValueSize: Number.POSITIVE_INFINITY };

/** The metadata of a JSON body, if it has the accepted shape (sizes are the upload service's to check); else 400. */
export function metadataOfJson(
  value: Readonly<Record<string, unknown>> | undefined,
): Record<string, string | null> | undefined {
  if (value === undefined) return undefined;
  const problem = metadataProblem(value, SHAPE_ONLY);
  if (problem) throw badRequest(problem);
  return value as Record<string, string | null>;
}
