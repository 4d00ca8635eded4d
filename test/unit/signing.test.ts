// The volumes' signatures (signing.ts), pinned: nginx computes the same md5 from its config, so
// a change here is a change of the wire format. The vectors come from openssl:
//   printf '2000000000/sv01/60/08/L3dlaGF2ZQ== put SECRET' | openssl md5 -binary | base64 | tr '+/' '-_' | tr -d =
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkRequest, nginxUri, opOf, signHeaders, signQuery, splitTarget } from '../../src/volumes/signing.js';

const SECRET = 'f00dfeed0123456789abcdef-_xyz';
const BLOB = '/sv01/60/08/L3dlaGF2ZQ==';

test('signatures: md5(expires + uri + " " + op + " " + secret), base64url; headers for the master, a query to read', () => {
  assert.equal(signQuery(SECRET, BLOB, 2000000000), 'md5=kcA2JqT8w1d0B9GvLj1n1A&expires=2000000000');
  assert.deepEqual(signHeaders(SECRET, BLOB, 'put', 2000000000), {
    'x-mkv-signature': 'LMH7ZXZOmHkbugSNeXFWOQ',
    'x-mkv-expires': '2000000000',
  });
  assert.equal(signHeaders(SECRET, '/sv01/60/', 'list', 2000000000)['x-mkv-signature'], 'a7h22GZITk8PkLY4XZMlnA');
  assert.equal(signHeaders(SECRET, '/sv01//60/./', 'list', 2000000000)['x-mkv-signature'], 'a7h22GZITk8PkLY4XZMlnA', 'the URI nginx sees');
});

test("the op of a request: its method, and for GET and HEAD whether the URI is a directory's", () => {
  assert.equal(opOf('GET', BLOB), 'read');
  assert.equal(opOf('HEAD', BLOB), 'read');
  assert.equal(opOf('GET', '/sv01/'), 'list');
  assert.equal(opOf('HEAD', '/'), 'list');
  assert.equal(opOf('PUT', BLOB), 'put');
  assert.equal(opOf('DELETE', BLOB), 'delete');
  for (const [method, uri] of [
    ['DELETE', '/sv01/'],
    ['PUT', '/sv01/'],
    ['POST', BLOB],
    ['MKCOL', '/x/'],
    ['get', BLOB],
  ]) {
    assert.equal(opOf(method!, uri!), undefined, `${method} ${uri}`);
  }
});

test("paths as nginx's $uri has them: decoded, slashes merged, dot segments resolved; 400s undefined", () => {
  for (const [path, uri] of [
    ['/a/b', '/a/b'],
    ['/a//b', '/a/b'],
    ['/a/./b', '/a/b'],
    ['/a/%2e%2e/b', '/b'],
    ['/a/b/..', '/a/'],
    ['/a/b/.', '/a/b/'],
    ['/a%2Fb', '/a/b'],
    ['/L3dlaGF2ZQ%3D%3D', '/L3dlaGF2ZQ=='],
    ['/', '/'],
    ['/../a', undefined],
    ['/a%00', undefined],
    ['/a%zz', undefined],
    ['a/b', undefined],
  ] as const) {
    assert.equal(nginxUri(path), uri, path);
  }
  assert.deepEqual(splitTarget('/a?b=c'), { path: '/a', query: 'b=c' });
  assert.deepEqual(splitTarget('http://host:80/a/b?x'), { path: '/a/b', query: 'x' });
  assert.deepEqual(splitTarget('http://host'), { path: '/', query: '' });
});

test('checkRequest: header signatures for any op, a query signature for a read only, expiry, a signature bound to its URI and op', () => {
  const now = 1_900_000_000;
  const check = (method: string, uri: string, query: string, headers: Record<string, string> = {}) =>
    checkRequest(SECRET, { method, uri, query, headers }, now);
  const put = signHeaders(SECRET, BLOB, 'put', 2000000000);
  assert.equal(check('PUT', BLOB, '', put), 'ok');
  assert.equal(check('DELETE', BLOB, '', put), 'bad', "a put's signature does not delete");
  assert.equal(check('PUT', BLOB, `md5=${put['x-mkv-signature']}&expires=2000000000`), 'bad', 'nor put from the query');
  assert.equal(check('GET', BLOB, signQuery(SECRET, BLOB, 2000000000)), 'ok');
  assert.equal(check('HEAD', BLOB, `MD5=kcA2JqT8w1d0B9GvLj1n1A&Expires=2000000000`), 'ok', "nginx's $arg_ ignores case");
  assert.equal(check('GET', BLOB, signQuery(SECRET, BLOB, 1_800_000_000)), 'expired');
  assert.equal(check('GET', '/sv01/60/08/', signQuery(SECRET, BLOB, 2000000000)), 'bad', 'a read link lists nothing');
  assert.equal(check('GET', BLOB, 'md5=kcA2JqT8w1d0B9GvLj1n1A&expires=2000000001'), 'bad');
  assert.equal(check('GET', BLOB, 'md5=kcA2JqT8w1d0B9GvLj1n1A&expires='), 'bad');
  assert.equal(check('PUT', BLOB, '', { 'x-mkv-signature': put['x-mkv-signature']! }), 'bad', 'a header signature needs its expiry');
  assert.equal(check('PUT', BLOB, '', { ...put, 'x-mkv-signature': `${put['x-mkv-signature']}, ${put['x-mkv-signature']}` }), 'bad');
});
