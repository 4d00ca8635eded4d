// Which requests are S3's: signed as S3 signs, sent by an AWS SDK or the aws cli, naming an S3
// operation in their query, or arriving on the S3 port. The master answers those as S3 does
// (master/s3/), and every other as the original did (native-api.ts).
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/** S3-signed: a SigV4 (or V2) Authorization header, or a presigned URL's query (X-Amz-*, or V2's AWSAccessKeyId). */
export function isS3Signed(headers: IncomingHttpHeaders, query: string): boolean {
  if (/^AWS4-HMAC-SHA256 |^AWS /.test(headers.authorization ?? '')) return true;
  return /(?:^|&)(?:X-Amz-(?:Algorithm|Credential|Signature)|AWSAccessKeyId)=/i.test(query);
}

const s3Port = new WeakSet<IncomingMessage>();

/** Marks a request as one that came to the S3 port (--s3-port): an S3 request, signed or not. */
export function markS3Port(message: IncomingMessage): void {
  s3Port.add(message);
}

export function onS3Port(message: IncomingMessage): boolean {
  return s3Port.has(message);
}

/**
 * Sent by an AWS SDK, signed or not: every current one (botocore under the aws cli and boto3,
 * the C++ SDK under pyarrow, JavaScript v3, Java v2, Go v2) sends amz-sdk-invocation-id with each
 * request, and the aws cli v2's own s3 commands (Debian's 2.9, unsigned) say who they are in their
 * User-Agent; curl and the original's clients do neither. So an S3 client that signs nothing
 * (pyarrow anonymous=True, aws --no-sign-request) gets S3's answers on the master's own port too;
 * the S3 port (--s3-port) serves any other unsigned S3 client.
 */
export function isS3Client(headers: IncomingHttpHeaders): boolean {
  return (
    headers['amz-sdk-invocation-id'] !== undefined ||
    isS3Signed(headers, '') ||
    /^(aws-cli|Boto3|Botocore|aws-sdk-[a-z]+)\//i.test(headers['user-agent'] ?? '')
  );
}

/** Query parameters that name an S3 operation (or a part of one) the native API does not have. */
const S3_SUBRESOURCES = [
  'list-type',
  'uploads',
  'uploadId',
  'delete',
  'tagging',
  'acl',
  'versionId',
  'versions',
  'versioning',
  'location',
  'attributes',
  'partNumber',
  'retention',
  'legal-hold',
  'object-lock',
  'policy',
  'cors',
  'lifecycle',
  'website',
  'encryption',
  'notification',
  'replication',
  'restore',
  'select',
  'torrent',
  'renameObject',
];

/** An S3 request: from an S3 client, or naming an S3 operation in its query; answered (and refused) as S3 answers. */
export function isS3(headers: IncomingHttpHeaders, query: string): boolean {
  if (isS3Client(headers) || isS3Signed(headers, query)) return true;
  if (query === '') return false;
  const params = new URLSearchParams(query);
  return S3_SUBRESOURCES.some((name) => params.has(name));
}
