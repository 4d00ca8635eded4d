import { readFileSync } from 'node:fs';

/** This build's version, from the package it was built from (dist/src/cli/ is three levels below it). */
export function mkvVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
  return `mkv ${manifest.version} (${manifest.name}), node ${process.version}`;
}
