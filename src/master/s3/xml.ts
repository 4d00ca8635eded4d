// Just enough XML for the S3 subset: escaping for the documents we write, and reading the two
// small documents clients send (Delete, CompleteMultipartUpload). A document that is not the
// expected shape is MalformedXML, never a guess.
import { MkvError } from '../../errors.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

export function escapeXml(text: string): string {
  // Characters XML 1.0 cannot hold at all are written as the replacement character.
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!).replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '\uFFFD');
}

export function unescapeXml(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_, entity: string) => {
    if (entity[0] === '#') return String.fromCodePoint(entity[1] === 'x' ? parseInt(entity.slice(2), 16) : Number(entity.slice(1)));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[entity]!;
  });
}

/** <name>children</name>, as an XML element with escaped text when given a string. */
export function element(name: string, content: string | number | boolean | Array<string>): string {
  const inner = Array.isArray(content) ? content.join('') : typeof content === 'string' ? escapeXml(content) : String(content);
  return `<${name}>${inner}</${name}>`;
}

export function document(root: string, children: string[]): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${children.join('')}</${root}>`;
}

function malformed(why: string): MkvError {
  return new MkvError('MKV_BAD_XML', `the XML document is malformed: ${why}`);
}

/** The inner text of every <name>…</name> in `xml` (no nesting of the same name). */
export function childElements(xml: string, name: string): string[] {
  const found: string[] = [];
  const pattern = new RegExp(`<${name}(?:\\s[^>]*)?>([\\s\\S]*?)</${name}\\s*>`, 'g');
  for (const match of xml.matchAll(pattern)) found.push(match[1]!);
  return found;
}

/** The root element's content, checking the document is that element and well balanced enough. */
export function rootContent(xml: string, root: string): string {
  const body = xml.replace(/^\uFEFF?\s*(<\?xml[^>]*\?>)?\s*/, '').trim();
  const match = new RegExp(`^<${root}(?:\\s[^>]*)?>([\\s\\S]*)</${root}\\s*>$`).exec(body);
  if (!match) throw malformed(`expected one <${root}> element`);
  const content = match[1]!;
  const opens = (content.match(/<[A-Za-z][^>]*[^/]>|<[A-Za-z]>/g) ?? []).length;
  const closes = (content.match(/<\/[A-Za-z][^>]*>/g) ?? []).length;
  if (opens !== closes || /<(?![A-Za-z/!?])/.test(content)) throw malformed('unbalanced elements');
  return content;
}

/** The text of the single <name> child, unescaped; throws when missing. */
export function requiredText(xml: string, name: string): string {
  const [text] = childElements(xml, name);
  if (text === undefined) throw malformed(`<${name}> is missing`);
  if (/</.test(text)) throw malformed(`<${name}> holds elements, not text`);
  return unescapeXml(text);
}
