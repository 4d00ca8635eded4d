// The body timeout, one rule for every request body (a PUT's value, an S3 part, an XML
// document): in each window of --body-timeout at least MIN_BYTES_PER_WINDOW must arrive. A
// client that stops, or that trickles a byte now and then to hold a connection open (30 of them
// held 30 of a master's connections for as long as they liked), is cut off within two windows.
import type { Readable } from 'node:stream';
import { MkvError } from '../errors.js';

/** Slower than this per window is no client worth waiting for: 1 KiB per 10 s by default. */
export const MIN_BYTES_PER_WINDOW = 1024;

/**
 * Watches `body` (which must be flowing, or be read through 'data'): when a window of `windowMs`
 * passes with fewer than MIN_BYTES_PER_WINDOW, calls `onSlow` once with the reason. Returns the
 * function that stops watching (call it when the body has ended).
 */
export function watchBodyRate(body: Readable, windowMs: number, onSlow: (error: MkvError, received: number) => void): () => void {
  let received = 0;
  let inWindow = 0;
  const onData = (chunk: Buffer) => {
    received += chunk.length;
    inWindow += chunk.length;
  };
  const timer = setInterval(() => {
    if (inWindow >= MIN_BYTES_PER_WINDOW) {
      inWindow = 0;
      return;
    }
    stop();
    const what =
      inWindow === 0 ? `stalled for ${windowMs} ms` : `trickled ${inWindow} bytes in ${windowMs} ms (less than ${MIN_BYTES_PER_WINDOW})`;
    onSlow(new MkvError('MKV_SHORT_BODY', `the request body ${what} after ${received} bytes`), received);
  }, windowMs);
  timer.unref();
  const stop = () => {
    clearInterval(timer);
    body.off('data', onData);
  };
  body.on('data', onData);
  return stop;
}

/**
 * Why a body can no longer be read, if it already cannot: it failed (a check of what it was
 * signed with, its framing) or its client went away, while the write was being set up and
 * nobody listened; its 'error' and 'close' have gone by, so waiting on them would stall.
 */
export function deadBody(body: Readable): Error | undefined {
  if (body.errored) return body.errored;
  if (body.destroyed && !body.readableEnded) return new MkvError('MKV_SHORT_BODY', 'the request body ended early (the client went away)');
  return undefined;
}

/** Reads a whole small body into one buffer (at most `limit` bytes), under the body timeout. */
export function readSmallBody(body: Readable, limit: number, windowMs: number, tooLarge: () => MkvError): Promise<Buffer> {
  const dead = deadBody(body);
  if (dead) return Promise.reject(dead instanceof MkvError ? dead : new MkvError('MKV_SHORT_BODY', 'the request body failed'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (error?: Error) => {
      stopWatching();
      body.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (error) {
        body.resume(); // what is left is not read into memory
        reject(error);
      } else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return finish(tooLarge());
      chunks.push(chunk);
    };
    const onEnd = () => finish();
    const onError = (error: Error) =>
      finish(error instanceof MkvError ? error : new MkvError('MKV_SHORT_BODY', `the request body failed after ${size} bytes`));
    const onClose = () => finish(new MkvError('MKV_SHORT_BODY', `the request body ended after ${size} bytes (the client went away)`));
    const stopWatching = watchBodyRate(body, windowMs, (error) => finish(error));
    body.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}
