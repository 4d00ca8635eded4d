// One error class with a stable `code` and the HTTP `status` it maps to. Handlers throw these;
// errorAnswer and s3ErrorAnswer (master/errors.ts, master/s3/errors.ts) turn them into answers, on the native path and through Koa alike. Tests assert on `code`.

export const ErrorCodes = {
  MKV_BAD_KEY: 400,
  MKV_KEY_TOO_LONG: 400,
  MKV_BAD_QUERY: 400,
  MKV_SHORT_BODY: 400,
  MKV_BAD_REQUEST: 400,
  MKV_REBALANCE_FAILED: 400,
  MKV_BAD_XML: 400,
  /** The body's sha256 is not the X-Amz-Content-SHA256 its request was signed with. */
  MKV_CONTENT_SHA256_MISMATCH: 400,
  /** The body's md5 is not its Content-MD5. */
  MKV_BAD_DIGEST: 400,
  /** A Content-MD5 that is not the base64 of 16 bytes. */
  MKV_INVALID_DIGEST: 400,
  /** A SigV4 credential scope for another service or region, or an Authorization header that cannot be read. */
  MKV_AUTH_MALFORMED: 400,
  MKV_INVALID_PART: 400,
  MKV_ENTITY_TOO_SMALL: 400,
  MKV_NO_SUCH_UPLOAD: 404,
  MKV_INVALID_RANGE: 416,
  MKV_UNAUTHENTICATED: 401,
  MKV_SIGNATURE: 403,
  MKV_UNKNOWN_ACCESS_KEY: 403,
  MKV_TIME_SKEWED: 403,
  MKV_ACCESS_DENIED: 403,
  MKV_UNKNOWN_OPERATION: 403,
  MKV_EXISTS: 403,
  /** A condition the request set (If-Match, If-None-Match, If-*-Since) does not hold. */
  MKV_PRECONDITION_FAILED: 412,
  MKV_PROTECTED: 403,
  MKV_READ_ONLY: 403,
  MKV_NOT_FOUND: 404,
  /** A version of a key whose bytes were removed (GET ?version=, ?at=): the log knows it, the volumes no longer hold it. */
  MKV_GONE: 410,
  /** S3 ?versionId naming no version of the key whose bytes are kept. */
  MKV_NO_SUCH_VERSION: 404,
  /** S3 GetObject/HeadObject ?versionId of a delete marker. */
  MKV_DELETE_MARKER: 405,
  MKV_KEY_LOCKED: 409,
  MKV_DELETING: 409,
  MKV_BUCKET_NOT_EMPTY: 409,
  /** An S3 request for a bucket that was never created (or was deleted) and holds no live key. */
  MKV_NO_SUCH_BUCKET: 404,
  /** CreateBucket of a name S3 does not allow (3 to 63 of a-z 0-9 . -, ...). */
  MKV_INVALID_BUCKET_NAME: 400,
  /** CreateBucket of a bucket another access key created. */
  MKV_BUCKET_EXISTS: 409,
  /** GetBucketTagging: no bucket has tags here. */
  MKV_NO_TAG_SET: 404,
  /** More user metadata (x-amz-meta-*) than S3 keeps, 2 KB. */
  MKV_METADATA_TOO_LARGE: 400,
  /** A conditional write (If-Match, If-None-Match) that races another write of its key. */
  MKV_CONDITIONAL_CONFLICT: 409,
  MKV_EMPTY_BODY: 411,
  MKV_TOO_MANY_KEYS: 413,
  MKV_VOLUME_FAILED: 500,
  MKV_INTERNAL: 500,
  MKV_LOG_UNAVAILABLE: 503,
  MKV_LOG_FULL: 507,
  MKV_UPLOADS_FULL: 507,
  MKV_CORRUPT_LOG: 500,
  MKV_INDEX_AHEAD: 500,
  MKV_INDEX_TORN: 500,
  MKV_INDEX_FORMAT: 500,
  MKV_DB_LOCKED: 500,
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class MkvError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Headers its answer carries (S3's x-amz-delete-marker on a deleted key's 404). */
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; headers?: Record<string, string> }) {
    super(message, options);
    this.name = 'MkvError';
    this.code = code;
    this.status = ErrorCodes[code];
    this.headers = options?.headers;
  }
}

export function isMkvError(error: unknown, code?: ErrorCode): error is MkvError {
  return error instanceof MkvError && (code === undefined || error.code === code);
}

/** A command line or a configuration file that cannot work: the message says why; mkv exits 2. */
export class UsageError extends Error {}
