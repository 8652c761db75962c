/** Route schemas every HTTP surface shares: the error body and the `{ id }` parameter. */
export const ErrorBody = {
  type: 'object',
  properties: { error: { type: 'string' }, message: { type: 'string' }, details: {} },
  required: ['error', 'message'],
} as const;

/** The common `{ id }` route parameter. */
export const IdParams = {
  type: 'object',
  properties: { id: { type: 'string' } },
  required: ['id'],
} as const;
