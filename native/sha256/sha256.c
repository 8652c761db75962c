/*
 * Freight's running SHA-256 at native speed: OpenSSL's SHA256_CTX (the OpenSSL built into Node, which exports
 * it, so nothing else is linked), with its state read out and written back in Freight's own format (below), so
 * that a state saved here loads in any other implementation of that format, and the other way round.
 *
 * OpenSSL picks the fastest code this CPU has at run time (SHA-NI, AVX2, ARMv8 crypto extensions): the point of
 * this file. The low-level SHA256_* functions are deprecated in OpenSSL 3 only in favour of EVP, which has no
 * way to save a running state; they remain exported by Node and are the same code EVP runs.
 *
 * The state format, version 1 (41 to 104 bytes; src/uploads/sha256/state.ts reads and writes the same):
 *   byte 0        1, the version
 *   bytes 1-8     the number of bytes hashed so far, unsigned, big-endian
 *   bytes 9-40    the intermediate hash value H0..H7 after the whole 64-byte blocks (FIPS 180-4), big-endian
 *   bytes 41-     the bytes after the last whole block (the count mod 64 of them)
 *
 * Exports (every `ctx` is a Uint8Array of `contextSize` bytes that the caller owns and never shares between two
 * calls at once):
 *   init(ctx)                       a new hash
 *   update(ctx, bytes)              hashes bytes, here and now
 *   updateAsync(ctx, bytes, done)   hashes bytes on libuv's threadpool, then calls done() (ctx and bytes stay
 *                                   referenced, and must stay untouched, until then)
 *   save(ctx) -> Buffer             the state, in the format above
 *   load(ctx, state)                the hash continued from a state (throws if it is not one)
 *   digest(ctx) -> Buffer           the 32-byte digest (ends the hash)
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#define NAPI_VERSION 8
#include <node_api.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define STATE_VERSION 1
#define STATE_HEAD 41

#define CHECK(call)                                 \
  do {                                              \
    if ((call) != napi_ok) return throw_last(env);  \
  } while (0)

static napi_value throw_last(napi_env env) {
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, NULL, info && info->error_message ? info->error_message : "napi call failed");
  return NULL;
}

/* The bytes of a Uint8Array argument. */
static bool bytes_of(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) {
    napi_throw_type_error(env, NULL, "expected a Uint8Array");
    return false;
  }
  napi_typedarray_type type;
  void *base = NULL;
  if (napi_get_typedarray_info(env, value, &type, length, &base, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "expected a Uint8Array");
    return false;
  }
  *data = base;
  return true;
}

/* A context argument: a Uint8Array of exactly sizeof(SHA256_CTX) bytes. */
static SHA256_CTX *context_of(napi_env env, napi_value value) {
  uint8_t *data = NULL;
  size_t length = 0;
  if (!bytes_of(env, value, &data, &length)) return NULL;
  if (length != sizeof(SHA256_CTX) || ((uintptr_t)data % sizeof(SHA_LONG)) != 0) {
    napi_throw_range_error(env, NULL, "not a SHA-256 context");
    return NULL;
  }
  return (SHA256_CTX *)data;
}

static napi_value get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return throw_last(env);
  if (argc < want) {
    napi_throw_type_error(env, NULL, "missing arguments");
    return NULL;
  }
  return argv[0];
}

static napi_value init(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  SHA256_CTX *ctx = context_of(env, argv[0]);
  if (!ctx) return NULL;
  SHA256_Init(ctx);
  return NULL;
}

static napi_value update(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  SHA256_CTX *ctx = context_of(env, argv[0]);
  if (!ctx) return NULL;
  uint8_t *data = NULL;
  size_t length = 0;
  if (!bytes_of(env, argv[1], &data, &length)) return NULL;
  SHA256_Update(ctx, data, length);
  return NULL;
}

/* One updateAsync: what the threadpool hashes, and what keeps its context, bytes and callback alive meanwhile. */
typedef struct {
  napi_async_work work;
  napi_ref ctx_ref, bytes_ref, done_ref;
  SHA256_CTX *ctx;
  const uint8_t *data;
  size_t length;
} Job;

static void job_execute(napi_env env, void *arg) {
  (void)env;
  Job *job = arg;
  SHA256_Update(job->ctx, job->data, job->length);
}

static void job_complete(napi_env env, napi_status status, void *arg) {
  Job *job = arg;
  napi_value done = NULL, global = NULL, error = NULL;
  napi_get_reference_value(env, job->done_ref, &done);
  napi_delete_reference(env, job->ctx_ref);
  napi_delete_reference(env, job->bytes_ref);
  napi_delete_reference(env, job->done_ref);
  napi_delete_async_work(env, job->work);
  free(job);
  if (status != napi_ok) {
    napi_value message = NULL;
    napi_create_string_utf8(env, "the SHA-256 work was cancelled", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &error);
  } else {
    napi_get_null(env, &error);
  }
  napi_get_global(env, &global);
  if (done) napi_call_function(env, global, done, 1, &error, NULL);
}

static napi_value update_async(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  SHA256_CTX *ctx = context_of(env, argv[0]);
  if (!ctx) return NULL;
  uint8_t *data = NULL;
  size_t length = 0;
  if (!bytes_of(env, argv[1], &data, &length)) return NULL;
  napi_valuetype type;
  CHECK(napi_typeof(env, argv[2], &type));
  if (type != napi_function) {
    napi_throw_type_error(env, NULL, "expected a callback");
    return NULL;
  }
  Job *job = calloc(1, sizeof(Job));
  if (!job) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  job->ctx = ctx;
  job->data = data;
  job->length = length;
  napi_value name = NULL;
  if (napi_create_reference(env, argv[0], 1, &job->ctx_ref) != napi_ok ||
      napi_create_reference(env, argv[1], 1, &job->bytes_ref) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &job->done_ref) != napi_ok ||
      napi_create_string_utf8(env, "freight:sha256", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, job_execute, job_complete, job, &job->work) != napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok) {
    /* Nothing is queued: undo what was made. */
    if (job->work) napi_delete_async_work(env, job->work);
    if (job->ctx_ref) napi_delete_reference(env, job->ctx_ref);
    if (job->bytes_ref) napi_delete_reference(env, job->bytes_ref);
    if (job->done_ref) napi_delete_reference(env, job->done_ref);
    free(job);
    return throw_last(env);
  }
  return NULL;
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static napi_value save(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  SHA256_CTX *ctx = context_of(env, argv[0]);
  if (!ctx) return NULL;
  /* Nh:Nl counts bits; num is how many bytes of data[] wait for the next block. */
  uint64_t count = ((((uint64_t)ctx->Nh) << 32) | ctx->Nl) >> 3;
  size_t tail = ctx->num;
  if (tail != (count & 63) || tail >= SHA256_CBLOCK) {
    napi_throw_error(env, NULL, "the SHA-256 context is inconsistent");
    return NULL;
  }
  napi_value out = NULL;
  void *raw = NULL;
  CHECK(napi_create_buffer(env, STATE_HEAD + tail, &raw, &out));
  uint8_t *p = raw;
  p[0] = STATE_VERSION;
  put32(p + 1, (uint32_t)(count >> 32));
  put32(p + 5, (uint32_t)count);
  for (int i = 0; i < 8; i++) put32(p + 9 + 4 * i, ctx->h[i]);
  memcpy(p + STATE_HEAD, ctx->data, tail);
  return out;
}

static napi_value load(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  SHA256_CTX *ctx = context_of(env, argv[0]);
  if (!ctx) return NULL;
  uint8_t *p = NULL;
  size_t length = 0;
  if (!bytes_of(env, argv[1], &p, &length)) return NULL;
  if (length < STATE_HEAD || p[0] != STATE_VERSION) {
    napi_throw_error(env, NULL, "not a SHA-256 state (version 1)");
    return NULL;
  }
  uint64_t count = ((uint64_t)get32(p + 1) << 32) | get32(p + 5);
  /* SHA-256 counts at most 2^64 - 1 bits. */
  if (count >> 61 || length != STATE_HEAD + (count & 63)) {
    napi_throw_error(env, NULL, "not a SHA-256 state (version 1)");
    return NULL;
  }
  SHA256_Init(ctx);
  for (int i = 0; i < 8; i++) ctx->h[i] = get32(p + 9 + 4 * i);
  ctx->Nl = (SHA_LONG)(count << 3);
  ctx->Nh = (SHA_LONG)(count >> 29);
  ctx->num = (unsigned int)(count & 63);
  memcpy(ctx->data, p + STATE_HEAD, ctx->num);
  return NULL;
}

static napi_value digest(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  SHA256_CTX *ctx = context_of(env, argv[0]);
  if (!ctx) return NULL;
  napi_value out = NULL;
  void *raw = NULL;
  CHECK(napi_create_buffer(env, SHA256_DIGEST_LENGTH, &raw, &out));
  SHA256_Final(raw, ctx);
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor properties[] = {
      {"init", NULL, init, NULL, NULL, NULL, napi_enumerable, NULL},
      {"update", NULL, update, NULL, NULL, NULL, napi_enumerable, NULL},
      {"updateAsync", NULL, update_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"save", NULL, save, NULL, NULL, NULL, napi_enumerable, NULL},
      {"load", NULL, load, NULL, NULL, NULL, napi_enumerable, NULL},
      {"digest", NULL, digest, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties) != napi_ok)
    return NULL;
  napi_value size = NULL;
  if (napi_create_uint32(env, sizeof(SHA256_CTX), &size) != napi_ok ||
      napi_set_named_property(env, exports, "contextSize", size) != napi_ok)
    return NULL;
  return exports;
}
