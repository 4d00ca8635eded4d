// The part of fs-native-extensions this project uses (it ships no types).
declare module 'fs-native-extensions' {
  /** An exclusive (or shared) lock on `length` bytes at `offset` of an open file (0, 0: all of it); false when another holds it. */
  export function tryLock(fd: number, offset?: number, length?: number, options?: { shared?: boolean }): boolean;
  const fsx: { tryLock: typeof tryLock };
  export default fsx;
}
