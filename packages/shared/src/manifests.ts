import { createRequire } from 'node:module';
import type { Document, LineCounter } from 'yaml';

/** yaml loads on the first parse, not at import (start-up budget: `octeliumctl --help` never parses). Its CommonJS
 * entry is required so that the parser stays synchronous. */
let yaml: typeof import('yaml') | undefined;
const loadYaml = () => (yaml ??= createRequire(import.meta.url)('yaml') as typeof import('yaml'));

/**
 * yaml's pretty messages end in " at line L, column C:" followed by an excerpt on the next lines; the line is
 * reported separately, so keep the sentence and say the column instead of cutting the message at the colon.
 */
function yamlErrorText(message: string, col: number | undefined): string {
  const first = message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  return col ? `${first} (column ${col})` : first;
}

/** YAML text of a value (`-o yaml`), with the same lazily loaded yaml. */
export function toYaml(value: unknown): string {
  return loadYaml().stringify(value);
}
import type { Resource } from './resource.js';
import { formatPath, validateResource, type PathSegment } from './validate.js';

export interface ManifestDoc { file: string; index: number; line: number; resource: Resource }
export interface ManifestError { file: string; index: number; line?: number; path?: string; message: string }

export function formatManifestError(e: ManifestError): string {
  const where = `${e.file}: document ${e.index + 1}${e.line ? ` (line ${e.line})` : ''}`;
  return `${where}: ${e.path ? `${e.path}: ` : ''}${e.message}`;
}

/** The 1-based line where the node at `path` (or its closest existing parent) starts. */
function lineOf(doc: Document, lc: LineCounter, path: PathSegment[]): number | undefined {
  // Point at the key itself when the path ends in a mapping key (an unknown field's value may start later).
  const last = path[path.length - 1];
  const parent = doc.getIn(path.slice(0, -1), true) as { items?: Array<{ key?: { value?: unknown; range?: [number, number, number] } }> } | undefined;
  const pair = typeof last === 'string' ? parent?.items?.find((p) => p.key?.value === last) : undefined;
  if (pair?.key?.range) return lc.linePos(pair.key.range[0]).line;
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
    if (node && node.range) return lc.linePos(node.range[0]).line;
  }
  return undefined;
}

/**
 * Parses multi-document YAML and validates every document. Nothing is partial: callers get every
 * resource and every error, and decide (apply is all-or-nothing per invocation).
 */
export function parseManifests(text: string, file: string): { docs: ManifestDoc[]; errors: ManifestError[] } {
  const { LineCounter, parseAllDocuments } = loadYaml();
  const lc = new LineCounter();
  const docs: ManifestDoc[] = [];
  const errors: ManifestError[] = [];
  const parsed = parseAllDocuments(text, { lineCounter: lc, prettyErrors: true });
  const list = Array.isArray(parsed) ? parsed : [];
  if (!Array.isArray(parsed)) errors.push({ file, index: 0, message: 'not a YAML stream' });
  let index = -1;
  for (const doc of list) {
    const start = doc.contents?.range?.[0] ?? doc.range?.[0] ?? 0;
    if (doc.errors.length === 0 && (doc.contents === null || doc.contents === undefined)) continue; // empty document (e.g. trailing ---)
    index++;
    if (doc.errors.length) {
      for (const e of doc.errors) errors.push({ file, index, line: e.linePos?.[0]?.line, message: `YAML syntax error: ${yamlErrorText(e.message, e.linePos?.[0]?.col)}` });
      continue;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      // An alias with no anchor, or too many aliases (a billion-laughs document): the user's input, not a crash.
      errors.push({ file, index, line: lc.linePos(start).line, message: `YAML error: ${(err as Error).message}` });
      continue;
    }
    // `get -o yaml|json` prints lists as `kind: List` with items, so that output re-applies as is.
    const isList = value && typeof value === 'object' && (value as { kind?: unknown }).kind === 'List' && Array.isArray((value as { items?: unknown }).items);
    const items: Array<{ raw: unknown; prefix: PathSegment[] }> = isList
      ? ((value as { items: unknown[] }).items).map((raw, i) => ({ raw, prefix: ['items', i] }))
      : [{ raw: value, prefix: [] }];
    for (const { raw, prefix } of items) {
      const v = validateResource(raw);
      if (!v.ok) {
        for (const issue of v.issues) {
          const path = [...prefix, ...issue.path];
          errors.push({ file, index, line: lineOf(doc, lc, path), path: formatPath(path), message: issue.message });
        }
        continue;
      }
      const node = doc.getIn(prefix, true) as { range?: [number, number, number] } | undefined;
      docs.push({ file, index, line: lc.linePos(node?.range?.[0] ?? start).line, resource: v.resource });
    }
  }
  return { docs, errors };
}
