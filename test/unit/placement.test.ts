import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { keyToPath, keyToVolumes, needsRebalance, pathNameToKey } from '../../src/placement.js';

const fiveVolumes = ['localhost:3001', 'localhost:3002', 'localhost:3003', 'localhost:3004', 'localhost:3005'];

describe('keyToPath', () => {
  test('the original minikeyvalue vectors', () => {
    assert.equal(keyToPath('hello'), '/5d/41/aGVsbG8=');
    assert.equal(keyToPath('helloworld'), '/fc/5e/aGVsbG93b3JsZA==');
  });

  test('the vectors of docs/placement.md', () => {
    assert.equal(keyToPath('/wehave'), '/60/08/L3dlaGF2ZQ==');
    assert.equal(keyToPath('/hello'), '/3e/d1/L2hlbGxv');
    assert.equal(keyToPath('/swag-é中'), '/ed/31/L3N3YWctw6nkuK0=');
    assert.equal(keyToPath('/???'), '/27/6f/Lz8/Pw==');
  });

  test('a base64 ending in / gets _ so it has a file name', () => {
    const path = keyToPath('/п');
    assert.match(path, /\/L9C_$/);
    assert.equal(pathNameToKey('L9C_'), '/п');
  });

  test('pathNameToKey inverts the name, and refuses what is not one', () => {
    for (const key of ['/wehave', '/swag-é中', 'hello', '/a b', '/п']) {
      const name = keyToPath(key).split('/').slice(3).join('/');
      assert.equal(pathNameToKey(name), key);
    }
    assert.equal(pathNameToKey('not base64!'), undefined);
    assert.equal(pathNameToKey('//8='), undefined, 'bytes that are not UTF-8');
  });
});

describe('keyToVolumes', () => {
  test('docs/placement.md vectors: 3 replicas, 10 subvolumes', () => {
    assert.deepEqual(keyToVolumes('/wehave', fiveVolumes, 3, 10), ['localhost:3001/sv07', 'localhost:3002/sv04', 'localhost:3005/sv01']);
    assert.deepEqual(keyToVolumes('/hello', fiveVolumes, 3, 10), ['localhost:3004/sv07', 'localhost:3003/sv04', 'localhost:3005/sv07']);
    assert.deepEqual(keyToVolumes('/swag-é中', fiveVolumes, 3, 10), ['localhost:3001/sv00', 'localhost:3004/sv05', 'localhost:3002/sv01']);
    assert.deepEqual(keyToVolumes('/???', fiveVolumes, 3, 10), ['localhost:3001/sv07', 'localhost:3005/sv04', 'localhost:3004/sv04']);
  });

  test('docs/placement.md vectors: 1 replica, 1 subvolume', () => {
    assert.deepEqual(
      ['/wehave', '/hello', '/swag-é中', '/???'].map((key) => keyToVolumes(key, fiveVolumes, 1, 1)[0]),
      ['localhost:3001', 'localhost:3004', 'localhost:3001', 'localhost:3001'],
    );
  });

  test('the original minikeyvalue vectors', () => {
    const volumes = ['larry', 'moe', 'curly'];
    assert.equal(keyToVolumes('hello', volumes, 1, 3)[0]!.split('/')[0], 'larry');
    assert.equal(keyToVolumes('helloworld', volumes, 1, 3)[0]!.split('/')[0], 'curly');
    assert.equal(keyToVolumes('world', volumes, 1, 3)[0]!.split('/')[0], 'moe');
    assert.equal(keyToVolumes('blah', volumes, 1, 3)[0]!.split('/')[0], 'curly');
  });

  test('subvolume names are upper-case hex with two digits at least', () => {
    const names = new Set<string>();
    for (let i = 0; i < 2000; i++) names.add(keyToVolumes(`/k${i}`, ['v'], 1, 300)[0]!);
    assert.ok([...names].every((name) => /^v\/sv[0-9A-F]{2,}$/.test(name)));
    assert.ok(names.has('v/sv0A') || [...names].some((name) => /[A-F]/.test(name)));
    assert.ok(
      [...names].some((name) => name.length === 'v/sv'.length + 3),
      'subvolumes past 255 take three digits',
    );
  });

  test('never more replicas than volumes, and the order does not depend on the list order', () => {
    assert.equal(keyToVolumes('/x', ['a', 'b'], 3, 1).length, 2);
    assert.deepEqual(keyToVolumes('/x', ['a', 'b', 'c'], 3, 1), keyToVolumes('/x', ['c', 'a', 'b'], 3, 1));
  });

  test('needsRebalance compares in order', () => {
    assert.equal(needsRebalance(['a', 'b'], ['a', 'b']), false);
    assert.equal(needsRebalance(['b', 'a'], ['a', 'b']), true);
    assert.equal(needsRebalance(['a'], ['a', 'b']), true);
  });
});
