#!/usr/bin/env node
// The npm registry this project is developed against lacks some platform builds of optional
// native packages (e.g. @msgpackr-extract/*-darwin-arm64). `npm install` then leaves them out of
// package-lock.json, and `npm ci` refuses the lock ("Missing: ... from lock file"). This adds a
// platform-only entry for every optional dependency the lock names but does not hold; npm ci
// skips those on other platforms without downloading anything. Run after `npm install`:
//   node tools/complete-lockfile.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const PLATFORM = /-(darwin|linux|win32|freebsd|android)-(arm64|x64|arm|ia32|riscv64|s390x|ppc64)(?:-(?:gnu|musl|msvc))?$/;
const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
let added = 0;
for (const [location, entry] of Object.entries(lock.packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    const platform = PLATFORM.exec(name);
    if (lock.packages[key] || !platform) continue;
    lock.packages[key] = { version, cpu: [platform[2]], license: entry.license, optional: true, os: [platform[1]] };
    added++;
    console.log(`added ${key}@${version} (needed by ${location})`);
  }
}
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0)),
);
writeFileSync(path, JSON.stringify(lock, null, 2) + '\n');
console.log(added === 0 ? 'package-lock.json is complete' : `added ${added} entries`);
