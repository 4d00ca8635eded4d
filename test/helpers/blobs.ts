// The blobs a volume directory holds, read straight off the disk (subvolume layout: svXX/XX/YY/name).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathNameToKey } from '../../src/placement.js';

export interface BlobFile {
  file: string;
  subvolume: string;
  /** undefined when the file name is not a key's. */
  key: string | undefined;
}

export function blobsIn(dir: string): BlobFile[] {
  const found: BlobFile[] = [];
  const walk = (path: string, parts: string[]) => {
    if (!existsSync(path)) return;
    for (const entry of readdirSync(path)) {
      if (entry.startsWith('.')) continue;
      const full = join(path, entry);
      if (statSync(full).isDirectory()) walk(full, [...parts, entry]);
      else found.push({ file: full, subvolume: parts[0]!, key: pathNameToKey([...parts.slice(3), entry].join('/')) });
    }
  };
  walk(dir, []);
  return found;
}
