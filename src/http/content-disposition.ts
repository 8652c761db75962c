/**
 * Content-Disposition for any file name (RFC 6266): `attachment`, an ASCII fallback in `filename`, and the exact
 * name in `filename*` (RFC 8187, UTF-8, percent-encoded), so Cyrillic, CJK, quotes or CR/LF in a name can
 * neither break the header nor inject another one.
 */
export function attachment(filename: string | null | undefined): string {
  return disposition('attachment', filename);
}

/** The same for either disposition type RFC 6266 defines: `inline` (shown, if the browser can) or `attachment`. */
export function disposition(type: 'inline' | 'attachment', filename: string | null | undefined): string {
  if (!filename) return type;
  // The fallback keeps printable ASCII except the characters that would end or escape the quoted string.
  const fallback = filename.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  // RFC 8187 attr-char: ALPHA DIGIT ! # $ & + - . ^ _ ` | ~ ; everything else percent-encoded.
  const encoded = encodeURIComponent(filename).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `${type}; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
