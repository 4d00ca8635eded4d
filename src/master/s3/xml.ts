// Just enough XML for the S3 subset: escaping for the documents we write, and reading the two
// small documents clients send (Delete, CompleteMultipartUpload).
//
// Reading goes through fast-xml-parser, never regexes over the whole body: a regex that
// looked for `<Object …>…</Object>` backtracked without bound on a hostile run of `<Object ` and stopped
// every GET of its worker. Every step below is linear in the document, and the document is
// bounded before any of them runs (MAX_XML_BYTES, MAX_XML_TAGS). No DTD is read, so no entity
// is ever expanded: the five predefined entities and character references are decoded here,
// and a reference to a character XML cannot hold (`&#x110000;`, `&#0;`) is MalformedXML.
// A document that is not the expected shape is MalformedXML too, never a guess.
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { MkvError } from '../../errors.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

export function escapeXml(text: string): string {
  // Characters XML 1.0 cannot hold at all are written as the replacement character.
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!).replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '\uFFFD');
}

/** <name>children</name>, as an XML element with escaped text when given a string. */
export function element(name: string, content: string | number | boolean | Array<string>): string {
  const inner = Array.isArray(content) ? content.join('') : typeof content === 'string' ? escapeXml(content) : String(content);
  return `<${name}>${inner}</${name}>`;
}

export function document(root: string, children: string[]): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${children.join('')}</${root}>`;
}

/** The largest document a client may send: 1,000 keys of 1,024 bytes, each character escaped. */
export const MAX_XML_BYTES = 2 * 1024 * 1024;
/** Markup a Delete of 1,000 objects (Object, Key, VersionId, ETag…) stays far below. */
const MAX_XML_TAGS = 50_000;

function malformed(why: string): MkvError {
  return new MkvError('MKV_BAD_XML', `the XML document is malformed: ${why}`);
}

/** An element read from a client's document: its child elements in order, and its text. */
export interface XmlElement {
  readonly name: string;
  readonly elements: readonly XmlElement[];
  /** The element's own text (entities decoded, CDATA as is), without its children's. */
  readonly text: string;
}

const parser = new XMLParser({
  preserveOrder: true,
  processEntities: false,
  parseTagValue: false,
  trimValues: false,
  ignoreAttributes: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  cdataPropName: '#cdata',
});

type ParsedNode = Record<string, ParsedNode[] | string>;

/** The document's root element, which must be named `root`. */
export function parseXml(xml: string, root: string): XmlElement {
  if (xml.length > MAX_XML_BYTES) throw malformed(`larger than ${MAX_XML_BYTES} bytes`);
  let tags = 0;
  for (let at = xml.indexOf('<'); at !== -1; at = xml.indexOf('<', at + 1)) {
    if (++tags > MAX_XML_TAGS) throw malformed(`more than ${MAX_XML_TAGS} tags`);
  }
  if (/<!DOCTYPE/i.test(xml)) throw malformed('a DOCTYPE is not accepted');
  let nodes: ParsedNode[];
  try {
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- fast-xml-parser 5 still ships it; its successor (fast-xml-validator) is a package of its own
    const valid = XMLValidator.validate(xml);
    if (valid !== true) throw malformed(`${valid.err.msg} (line ${valid.err.line})`);
    nodes = parser.parse(xml) as ParsedNode[];
  } catch (error) {
    // The parser's own limits (nesting, entities) are the document's fault, not the server's.
    throw error instanceof MkvError ? error : malformed((error as Error).message);
  }
  const elements = nodes.map(toElement).filter((node): node is XmlElement => node !== undefined);
  if (elements.length !== 1 || elements[0]!.name !== root) throw malformed(`expected one <${root}> element`);
  return elements[0]!;
}

function toElement(node: ParsedNode): XmlElement | undefined {
  const name = Object.keys(node).find((key) => key !== ':@');
  if (name === undefined || name === '#text' || name === '#cdata') return undefined;
  const elements: XmlElement[] = [];
  let text = '';
  for (const child of node[name] as ParsedNode[]) {
    if ('#text' in child) text += decodeText(child['#text'] as string);
    else if ('#cdata' in child) text += (child['#cdata'] as ParsedNode[]).map((part) => part['#text'] as string).join('');
    else {
      const element = toElement(child);
      if (element) elements.push(element);
    }
  }
  return { name, elements, text };
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Text with its references decoded; every quantifier is bounded, so this is linear. */
function decodeText(raw: string): string {
  return raw.replace(
    /&(?:#x([0-9A-Fa-f]{1,6});|#([0-9]{1,7});|(amp|lt|gt|quot|apos);)?/g,
    (whole, hex?: string, decimal?: string, name?: string) => {
      if (name !== undefined) return NAMED[name]!;
      if (hex === undefined && decimal === undefined) throw malformed(`"${whole}" starts no reference XML knows`);
      const code = hex !== undefined ? parseInt(hex, 16) : Number(decimal);
      if (!isXmlCharacter(code)) throw malformed(`character reference ${whole} is not a character XML can hold`);
      return String.fromCodePoint(code);
    },
  );
}

function isXmlCharacter(code: number): boolean {
  return (
    code === 0x9 ||
    code === 0xa ||
    code === 0xd ||
    (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) ||
    (code >= 0x10000 && code <= 0x10ffff)
  );
}

/** Every child element named `name`. */
export function childElements(parent: XmlElement, name: string): XmlElement[] {
  return parent.elements.filter((child) => child.name === name);
}

/** The text of the single child named `name`; throws when it is missing or holds elements. */
export function requiredText(parent: XmlElement, name: string): string {
  const [child] = childElements(parent, name);
  if (child === undefined) throw malformed(`<${name}> is missing`);
  if (child.elements.length > 0) throw malformed(`<${name}> holds elements, not text`);
  return child.text;
}
