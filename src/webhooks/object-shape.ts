/**
 * The pre-create receiver's say over the object (WEBHOOK_PRE_CREATE): a 2xx whose JSON body has an `object` member
 * sets, for this upload only, the key under S3_KEY_PREFIX, the object's Content-Type, Content-Disposition, storage
 * class, tags and user metadata. Everything in it is checked here against S3's rules before anything is recorded;
 * an answer that breaks one is the receiver's fault, never the client's (the caller answers 502). Other members of
 * the body, and bodies that are not JSON, are left alone: a receiver that only allows uploads keeps working.
 *
 * S3's rules (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html, …/object-tagging.html,
 * …/UsingMetadata.html): "The object key name is a sequence of Unicode characters with UTF-8 encoding of up to
 * 1,024 bytes long"; "You can associate up to 10 tags with an object"; "A tag key can be up to 128 Unicode
 * characters in length, and tag values can be up to 256 Unicode characters in length"; "The user-defined metadata
 * is limited to 2 KB in size … the sum of the number of bytes in the UTF-8 encoding of each key and value".
 */
import type { ObjectShape } from '../db/schema.js';
import { disposition } from '../http/content-disposition.js';
import type { ReceiverAnswer } from './post.js';

/** What a pre-create answer asked for: the key under the prefix (unset: the upload's id), and the object's shape. */
export interface ShapeAnswer {
  key?: string;
  shape: ObjectShape;
}

export interface ShapeRules {
  /** S3_KEY_PREFIX: counted in the key's length. */
  keyPrefix: string;
  /** S3_TAGGING: false for servers without object tagging, where an answer's tags cannot be kept. */
  tagging: boolean;
  /** Tag keys Freight sets itself (`sha256` with S3_TAGGING): not the receiver's, and they take a tag's room. */
  reservedTags: readonly string[];
}

/** The key names Freight derives from an upload's key (tus staging, src/tus/s3/layout.ts) reserve this segment. */
const STAGING_SEGMENT = '.staging/';
/** S3's 1,024 bytes, less room for the staged bytes' names under `<key>.staging/` (`tail-<start>-<end>`). */
export const MAX_KEY_BYTES = 1024 - 64;
const MAX_TAGS = 10;
const MAX_TAG_KEY = 128;
const MAX_TAG_VALUE = 256;
const MAX_METADATA_BYTES = 2 * 1024;
const MAX_CONTENT_TYPE = 255;
const MAX_FILENAME = 255;
/** S3's storage classes (PutObject's x-amz-storage-class). */
export const STORAGE_CLASSES = [
  'STANDARD',
  'REDUCED_REDUNDANCY',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER',
  'DEEP_ARCHIVE',
  'OUTPOSTS',
  'GLACIER_IR',
  'SNOW',
  'EXPRESS_ONEZONE',
] as const;
const FIELDS = new Set(['key', 'contentType', 'contentDisposition', 'storageClass', 'tags', 'metadata']);

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** Half a UTF-16 pair: not a Unicode character, and no UTF-8 encoding (S3 keys are UTF-8). */
const LONE_SURROGATE = /\p{Cs}/u;
/** RFC 9110 token, type "/" subtype *( OWS ";" OWS parameter ) with token or quoted-string values. */
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const MEDIA_TYPE = new RegExp(
  `^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|"(?:[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\x20-\\x7e])*"))*$`,
);
/** S3 tags: "letters, numbers, and spaces representable in UTF-8, and the following characters: + - = . _ : / @". */
const TAG_TEXT = /^[\p{L}\p{N}\p{Zs}+\-=._:/@]*$/u;
/** Metadata names become x-amz-meta-<name> headers (S3 lowercases them). */
const METADATA_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
/** Header values S3 keeps as sent: printable ASCII (anything else would have to be encoded: the receiver's call). */
const METADATA_VALUE = /^[\x20-\x7e]*$/;

export class BadShapeAnswer extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadShapeAnswer';
  }
}

const bad = (message: string): never => {
  throw new BadShapeAnswer(message);
};

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The shape a pre-create 2xx asks for; undefined when it asks for none. Throws BadShapeAnswer. */
export function shapeOfAnswer(answer: ReceiverAnswer, rules: ShapeRules): ShapeAnswer | undefined {
  if (!answer.contentType?.toLowerCase().includes('json') || answer.body.trim() === '') return undefined;
  let body: unknown;
  try {
    body = JSON.parse(answer.body);
  } catch {
    return bad('its body is not valid JSON');
  }
  if (!isRecord(body) || body.object === undefined || body.object === null) return undefined;
  return checkShape(body.object, rules);
}

/** `object` of a pre-create answer, checked (exported for the unit tests). Throws BadShapeAnswer. */
export function checkShape(object: unknown, rules: ShapeRules): ShapeAnswer {
  if (!isRecord(object)) return bad('"object" must be a JSON object');
  for (const field of Object.keys(object)) {
    if (!FIELDS.has(field)) bad(`"object" has an unknown member "${field.slice(0, 40)}"`);
  }
  const shape: ObjectShape = {};
  const result: ShapeAnswer = { shape };
  if (object.key !== undefined) result.key = checkKey(object.key, rules.keyPrefix);
  if (object.contentType !== undefined) shape.contentType = checkContentType(object.contentType);
  if (object.contentDisposition !== undefined) shape.contentDisposition = checkDisposition(object.contentDisposition);
  if (object.storageClass !== undefined) {
    if (!(STORAGE_CLASSES as readonly unknown[]).includes(object.storageClass))
      bad(`object.storageClass must be one of S3's: ${STORAGE_CLASSES.join(', ')}`);
    shape.storageClass = object.storageClass as string;
  }
  if (object.tags !== undefined) {
    if (!rules.tagging) bad('object.tags cannot be kept: this server does not tag objects (S3_TAGGING=false)');
    shape.tags = checkTags(object.tags, rules.reservedTags);
  }
  if (object.metadata !== undefined) shape.metadata = checkMetadata(object.metadata);
  return result;
}

/**
 * A key under the prefix that names one object and only that: UTF-8 of bounded length, relative ("no leading
 * /"), no empty, `.` or `..` segment, no control character or backslash, and nothing under a name Freight
 * derives from another key (`<key>.staging/`).
 */
export function checkKey(key: unknown, prefix: string): string {
  if (typeof key !== 'string' || key === '') return bad('object.key must be a non-empty string');
  const shown = JSON.stringify(key.length > 60 ? `${key.slice(0, 60)}…` : key);
  if (LONE_SURROGATE.test(key)) bad(`object.key ${shown} is not valid Unicode`);
  const bytes = Buffer.byteLength(prefix + key);
  if (bytes > MAX_KEY_BYTES) bad(`object.key is ${bytes} bytes with the prefix; at most ${MAX_KEY_BYTES} are allowed`);
  if (CONTROL.test(key)) bad(`object.key ${shown} holds a control character`);
  if (key.includes('\\')) bad(`object.key ${shown} holds a backslash`);
  if (key.startsWith('/')) bad(`object.key ${shown} must not start with "/" (it is a key under the prefix)`);
  if (key.split('/').some((segment) => segment === '' || segment === '.' || segment === '..'))
    bad(`object.key ${shown} has an empty, "." or ".." segment`);
  if (key.includes(STAGING_SEGMENT) || (prefix + key).includes(STAGING_SEGMENT))
    bad(`object.key ${shown} holds "${STAGING_SEGMENT}", which Freight keeps for staged bytes`);
  return key;
}

function checkContentType(value: unknown): string {
  if (typeof value !== 'string' || value.length > MAX_CONTENT_TYPE || !MEDIA_TYPE.test(value))
    return bad(`object.contentType must be a media type such as "image/png" (at most ${MAX_CONTENT_TYPE} characters)`);
  return value;
}

/** `"inline"`, `"attachment"`, or `{ "type": "inline" | "attachment", "filename": "…" }`: built here (RFC 6266). */
function checkDisposition(value: unknown): string {
  const type = isRecord(value) ? value.type : value;
  if (type !== 'inline' && type !== 'attachment')
    return bad('object.contentDisposition must be "inline", "attachment" or { "type": …, "filename": … }');
  if (!isRecord(value)) return type;
  for (const field of Object.keys(value)) {
    if (field !== 'type' && field !== 'filename')
      bad(`object.contentDisposition has an unknown member "${field.slice(0, 40)}"`);
  }
  const filename = value.filename;
  if (filename === undefined) return type;
  if (
    typeof filename !== 'string' ||
    filename === '' ||
    filename.length > MAX_FILENAME ||
    LONE_SURROGATE.test(filename)
  )
    return bad(`object.contentDisposition.filename must be a name of 1 to ${MAX_FILENAME} characters`);
  if (CONTROL.test(filename)) bad('object.contentDisposition.filename holds a control character');
  return disposition(type, filename);
}

function stringEntries(value: unknown, what: string): Array<[string, string]> {
  if (!isRecord(value)) return bad(`${what} must be an object of string values`);
  const entries = Object.entries(value);
  for (const [name, text] of entries) {
    if (typeof text !== 'string') bad(`${what} ${JSON.stringify(name.slice(0, 40))} must be a string`);
  }
  return entries as Array<[string, string]>;
}

function checkTags(value: unknown, reserved: readonly string[]): Record<string, string> {
  const entries = stringEntries(value, 'object.tags');
  const room = MAX_TAGS - reserved.length;
  if (entries.length > room)
    bad(
      `object.tags has ${entries.length} tags; S3 keeps ${MAX_TAGS} per object${reserved.length ? ` and Freight sets ${reserved.join(', ')}` : ''}, so at most ${room}`,
    );
  for (const [key, text] of entries) {
    const shown = JSON.stringify(key.slice(0, 40));
    if (reserved.includes(key)) bad(`object.tags.${key} is set by Freight itself`);
    if (key.startsWith('aws:')) bad(`object.tags ${shown}: the aws: prefix is AWS's`);
    if (key === '' || [...key].length > MAX_TAG_KEY || !TAG_TEXT.test(key))
      bad(`object.tags key ${shown} must be 1 to ${MAX_TAG_KEY} letters, digits, spaces or + - = . _ : / @`);
    if ([...text].length > MAX_TAG_VALUE || !TAG_TEXT.test(text))
      bad(
        `object.tags.${key.slice(0, 40)} must be at most ${MAX_TAG_VALUE} letters, digits, spaces or + - = . _ : / @`,
      );
  }
  return Object.fromEntries(entries);
}

function checkMetadata(value: unknown): Record<string, string> {
  const entries = stringEntries(value, 'object.metadata');
  const seen = new Set<string>();
  let bytes = 0;
  for (const [name, text] of entries) {
    const shown = JSON.stringify(name.slice(0, 40));
    if (!METADATA_NAME.test(name))
      bad(`object.metadata name ${shown} must be letters, digits, - and _ (it becomes an x-amz-meta- header)`);
    if (seen.has(name.toLowerCase())) bad(`object.metadata names ${shown} twice (S3 lowercases names)`);
    seen.add(name.toLowerCase());
    if (!METADATA_VALUE.test(text)) bad(`object.metadata.${name} must be printable ASCII (encode anything else)`);
    bytes += Buffer.byteLength(name) + Buffer.byteLength(text);
  }
  if (bytes > MAX_METADATA_BYTES)
    bad(`object.metadata is ${bytes} bytes; S3 keeps at most ${MAX_METADATA_BYTES} bytes of names and values`);
  return Object.fromEntries(entries);
}
