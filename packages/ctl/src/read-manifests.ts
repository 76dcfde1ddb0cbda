import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseManifests, type ManifestDoc, type ManifestError } from '@octelium-ts/shared';

function yamlFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...yamlFilesUnder(p));
    else if (/\.ya?ml$/i.test(entry.name)) out.push(p);
  }
  return out;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads a file, a directory (recursively, *.yaml|*.yml) or `-` (stdin) and validates every document. */
export async function readManifests(path: string): Promise<{ docs: ManifestDoc[]; errors: ManifestError[] }> {
  const sources: Array<{ name: string; text: string }> = [];
  if (path === '-') sources.push({ name: '<stdin>', text: await readStdin() });
  else {
    let st;
    try {
      st = statSync(path);
    } catch {
      return { docs: [], errors: [{ file: path, index: 0, message: 'no such file or directory' }] };
    }
    const files = st.isDirectory() ? yamlFilesUnder(path) : [path];
    if (st.isDirectory() && !files.length) return { docs: [], errors: [{ file: path, index: 0, message: 'no *.yaml or *.yml files in this directory' }] };
    for (const f of files) sources.push({ name: st.isDirectory() ? join(path, relative(path, f)) : f, text: readFileSync(f, 'utf8') });
  }
  const docs: ManifestDoc[] = [];
  const errors: ManifestError[] = [];
  for (const s of sources) {
    const r = parseManifests(s.text, s.name);
    docs.push(...r.docs);
    errors.push(...r.errors);
  }
  return { docs, errors };
}
