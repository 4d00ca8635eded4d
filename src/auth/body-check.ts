// Checking a body against what its request signed: its sha256 (X-Amz-Content-SHA256, or the
// signature itself when that header was not sent). Fed as the body arrives; finish() before
// anything the body brought is made durable (a value committed, a part kept, keys deleted).
import { createHash, type Hash } from 'node:crypto';
import { MkvError } from '../errors.js';
import type { BodyRule } from './sigv4.js';

export interface BodyCheck {
  update(chunk: Buffer): void;
  /** Throws when the body is not the one that was signed. */
  finish(): void;
}

/** The check a body rule asks for; undefined when there is none to make (or the aws-chunked decoder makes it). */
export function bodyCheck(rule: BodyRule): BodyCheck | undefined {
  if (rule.kind !== 'sha256' && rule.kind !== 'signed-sha256') return undefined;
  const hash: Hash = createHash('sha256');
  return {
    update: (chunk) => void hash.update(chunk),
    finish() {
      const digest = hash.digest('hex');
      if (rule.kind === 'sha256' && digest !== rule.expected) {
        throw new MkvError('MKV_BAD_DIGEST', "the body's sha256 is not the X-Amz-Content-SHA256 the request was signed with");
      }
      if (rule.kind === 'signed-sha256' && !rule.check(digest)) {
        throw new MkvError('MKV_SIGNATURE', 'the signature does not match the body: check the secret key and how the request was signed');
      }
    },
  };
}
