import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isMkvError } from '../../src/errors.js';
import { childElements, parseXml, requiredText } from '../../src/master/s3/xml.js';

const malformed = (error: unknown) => isMkvError(error, 'MKV_BAD_XML');

test('a Delete document as clients send it: namespaces, declaration, whitespace, entities, CDATA, comments', () => {
  const root = parseXml(
    '\uFEFF<?xml version="1.0" encoding="UTF-8"?>\n<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\n  <Quiet>true</Quiet>\n' +
      '  <Object><Key> a&amp;b&lt;&#x41;&#66;&#x1F600; </Key></Object>\n  <Object><Key><![CDATA[x&amp;<y]]><!-- c -->z</Key><VersionId>v</VersionId></Object>\n</Delete>\n',
    'Delete',
  );
  assert.equal(childElements(root, 'Quiet')[0]?.text, 'true');
  assert.deepEqual(
    childElements(root, 'Object').map((object) => requiredText(object, 'Key')),
    [' a&b<AB😀 ', 'x&amp;<yz'],
  );
});

test('documents that are not the expected shape are MalformedXML', () => {
  for (const xml of [
    '',
    'x',
    '<',
    '<Delete>',
    '<Delete><Object><Key>a</Key></Object>',
    '<Nope/>',
    '<Delete/><Delete/>',
    '<Delete><Object><Key><x/></Key></Object></Delete>',
    '<Delete>&nbsp;</Delete>',
    '<Delete>a & b</Delete>',
  ]) {
    assert.throws(
      () => {
        const root = parseXml(xml, 'Delete');
        for (const object of childElements(root, 'Object')) requiredText(object, 'Key');
      },
      malformed,
      JSON.stringify(xml),
    );
  }
  assert.throws(() => requiredText(parseXml('<Delete><Object/></Delete>', 'Delete').elements[0]!, 'Key'), malformed);
});

test('no DTD is read and no entity expanded', () => {
  const laughs =
    '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><Delete><Object><Key>&b;</Key></Object></Delete>';
  assert.throws(() => parseXml(laughs, 'Delete'), malformed);
});

test('a character reference XML cannot hold is MalformedXML, not a crash', () => {
  for (const reference of [
    '&#x110000;',
    '&#1114112;',
    '&#0;',
    '&#x1;',
    '&#xD800;',
    '&#xFFFE;',
    `&#x${'f'.repeat(1000)};`,
    `&#${'9'.repeat(1000)};`,
  ]) {
    assert.throws(() => parseXml(`<Delete><Object><Key>${reference}</Key></Object></Delete>`, 'Delete'), malformed, reference);
  }
});

// The regexes this replaced backtracked for minutes on the first document; the budget below is only
// there so that a return of that fails instead of hanging the suite.
test('hostile documents of up to 2 MB are refused in linear time', { timeout: 60_000 }, () => {
  const hostile = [
    '<Delete>' + '<Object '.repeat(100_000) + '</Delete>',
    '<Delete>' + '<Object>'.repeat(100_000) + '</Delete>',
    '<Delete>' + '<Object><Key>'.repeat(100_000) + '</Delete>',
    '<Delete>' + '<Object/>'.repeat(200_000) + '</Delete>',
    '<Delete>' + '<a b="'.repeat(200_000) + '</Delete>',
    '<Delete>' + '&#'.repeat(500_000) + '</Delete>',
    '<Delete>' + '<!--'.repeat(400_000) + '</Delete>',
    '<CompleteMultipartUpload>' + '<Part><PartNumber>1'.repeat(60_000) + '</CompleteMultipartUpload>',
    '<Delete>' + 'x'.repeat(3 * 1024 * 1024) + '</Delete>',
  ];
  for (const xml of hostile)
    assert.throws(() => parseXml(xml, xml.startsWith('<Delete>') ? 'Delete' : 'CompleteMultipartUpload'), malformed, xml.slice(0, 40));
});

test('the largest legitimate Delete (1,000 keys of 1,024 bytes) is read', () => {
  const keys = Array.from({ length: 1000 }, (_, i) => `${i}`.padEnd(1024, 'k'));
  const xml = `<Delete>${keys.map((key) => `<Object><Key>${key}</Key><VersionId>null</VersionId></Object>`).join('')}</Delete>`;
  assert.deepEqual(
    childElements(parseXml(xml, 'Delete'), 'Object').map((object) => requiredText(object, 'Key')),
    keys,
  );
});
