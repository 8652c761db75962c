/**
 * The Range header of a download (RFC 9110 §14): one byte range is served (206), several or a malformed header
 * are ignored (the whole file, 200: "A server MAY ignore the Range header field"), and a range that starts past
 * the end is unsatisfiable (416).
 */

/** Bytes start..end, both included. */
export interface ByteRange {
  start: number;
  end: number;
}

export type RangeAnswer = { kind: 'whole' } | { kind: 'part'; range: ByteRange } | { kind: 'unsatisfiable' };

const WHOLE: RangeAnswer = { kind: 'whole' };

/**
 * What to serve of a file of `size` bytes. `ifRange`: "A server MUST ignore an If-Range header field received in
 * a request that does not contain a Range header field"; when it is not the file's `etag`, the whole file.
 */
export function rangeOf(
  header: string | undefined,
  size: number,
  ifRange?: { header: string | undefined; etag: string },
): RangeAnswer {
  if (header === undefined) return WHOLE;
  if (ifRange?.header !== undefined && ifRange.header !== ifRange.etag) return WHOLE;
  // byte-range-spec = first-pos "-" [ last-pos ]; suffix-range = "-" suffix-length; one of them, nothing else.
  const match = /^bytes=[ \t]*(\d*)-(\d*)[ \t]*$/.exec(header);
  if (!match) return WHOLE;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return WHOLE;
  if (first === '') {
    // "-n": the last n bytes. "If the selected representation is shorter than the specified suffix-length, the
    // entire representation is used"; a suffix of 0 bytes selects nothing.
    const length = Number(last);
    if (length === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'part', range: { start: Math.max(0, size - length), end: size - 1 } };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return WHOLE; // invalid, so ignored
  // "satisfiable if the first-pos is less than the current length of the selected representation"
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'part', range: { start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) } };
}
