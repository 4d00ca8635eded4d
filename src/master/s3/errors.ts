// S3's answer to an error: its code and status for each of the store's (MkvError codes), in S3's
// XML error document, with the request's id.
import { randomBytes } from 'node:crypto';
import type { ErrorCode, MkvError } from '../../errors.js';
import type { Answer } from '../answer.js';
import { clientMessage } from '../errors.js';
import { element } from './xml.js';

export const S3_ERRORS: Partial<Record<ErrorCode, [string, number]>> = {
  MKV_NOT_FOUND: ['NoSuchKey', 404],
  MKV_GONE: ['NoSuchVersion', 404],
  MKV_NO_SUCH_VERSION: ['NoSuchVersion', 404],
  MKV_DELETE_MARKER: ['MethodNotAllowed', 405],
  MKV_NO_SUCH_UPLOAD: ['NoSuchUpload', 404],
  MKV_EXISTS: ['PreconditionFailed', 412],
  MKV_PRECONDITION_FAILED: ['PreconditionFailed', 412],
  MKV_KEY_LOCKED: ['OperationAborted', 409],
  MKV_DELETING: ['OperationAborted', 409],
  MKV_BUCKET_NOT_EMPTY: ['BucketNotEmpty', 409],
  MKV_NO_SUCH_BUCKET: ['NoSuchBucket', 404],
  MKV_INVALID_BUCKET_NAME: ['InvalidBucketName', 400],
  MKV_BUCKET_EXISTS: ['BucketAlreadyExists', 409],
  MKV_NO_TAG_SET: ['NoSuchTagSet', 404],
  MKV_METADATA_TOO_LARGE: ['MetadataTooLarge', 400],
  MKV_CONDITIONAL_CONFLICT: ['ConditionalRequestConflict', 409],
  MKV_BAD_KEY: ['InvalidURI', 400],
  MKV_KEY_TOO_LONG: ['KeyTooLongError', 400],
  MKV_BAD_QUERY: ['InvalidArgument', 400],
  MKV_BAD_XML: ['MalformedXML', 400],
  MKV_INVALID_PART: ['InvalidPart', 400],
  MKV_ENTITY_TOO_SMALL: ['EntityTooSmall', 400],
  MKV_INVALID_RANGE: ['InvalidRange', 416],
  MKV_EMPTY_BODY: ['MissingContentLength', 411],
  MKV_SHORT_BODY: ['IncompleteBody', 400],
  MKV_BAD_REQUEST: ['InvalidRequest', 400],
  MKV_READ_ONLY: ['AccessDenied', 403],
  MKV_PROTECTED: ['AccessDenied', 403],
  MKV_UNKNOWN_OPERATION: ['NotImplemented', 501],
  MKV_UNAUTHENTICATED: ['AccessDenied', 403],
  MKV_ACCESS_DENIED: ['AccessDenied', 403],
  MKV_SIGNATURE: ['SignatureDoesNotMatch', 403],
  MKV_UNKNOWN_ACCESS_KEY: ['InvalidAccessKeyId', 403],
  MKV_TIME_SKEWED: ['RequestTimeTooSkewed', 403],
  MKV_CONTENT_SHA256_MISMATCH: ['XAmzContentSHA256Mismatch', 400],
  MKV_BAD_DIGEST: ['BadDigest', 400],
  MKV_INVALID_DIGEST: ['InvalidDigest', 400],
  MKV_AUTH_MALFORMED: ['AuthorizationHeaderMalformed', 400],
  MKV_LOG_FULL: ['ServiceUnavailable', 503],
  MKV_UPLOADS_FULL: ['ServiceUnavailable', 503],
  MKV_LOG_UNAVAILABLE: ['ServiceUnavailable', 503],
};

/** An S3 request's id, as S3 gives one (16 hex digits): in its x-amz-request-id header, and in its error document. */
export function newRequestId(): string {
  return randomBytes(8).toString('hex').toUpperCase();
}

/** An MkvError as S3's XML error document; `resource` is the request's path. */
export function s3ErrorAnswer(error: MkvError, resource: string, requestId = newRequestId()): Answer {
  const [code, status] = S3_ERRORS[error.code] ?? ['InternalError', error.status >= 500 ? error.status : 500];
  return {
    status,
    headers: { ...error.headers, 'Mkv-Error': error.code, 'x-amz-request-id': requestId },
    type: 'application/xml',
    body:
      `<?xml version="1.0" encoding="UTF-8"?>\n<Error>${element('Code', code)}${element('Message', clientMessage(error))}` +
      `${element('Resource', resource)}${element('RequestId', requestId)}</Error>`,
  };
}
