import type { Command } from 'commander';
import { KINDS, OcteliumError, exampleText, formatManifestError, lookupKind, type KindName } from '@octelium-ts/shared';
import { readManifests } from '../read-manifests.js';
import { clientFor } from './common.js';

function kindList(values: string[], flag: string): KindName[] {
  return values.map((v) => {
    const def = lookupKind(v);
    if (!def) throw new OcteliumError('INVALID_ARGUMENT', `${flag}: unknown kind "${v}"`);
    return def.kind;
  });
}
const collect = (v: string, prev: string[]) => [...prev, v];

export function registerApply(program: Command): void {
  program
    .command('apply')
    .description('create or update resources from YAML: a file, a directory (recursive) or - for stdin')
    .argument('<path>', 'file, directory or -')
    .option('--prune', 'delete resources of the applied kinds that are not in PATH', false)
    .option('--include <kind>', 'only these kinds (repeatable)', collect, [])
    .option('--exclude <kind>', 'skip these kinds (repeatable)', collect, [])
    .option('--include-secret', 'also apply Secrets (skipped by default)', false)
    .option('--dry-run', 'validate and show what would change, change nothing', false)
    .addHelpText('after', exampleText([
      'octeliumctl apply my-mcp.yaml',
      'octeliumctl apply ./manifests --prune --include service',
      'cat svc.yaml | octeliumctl apply - --dry-run',
      'octeliumctl apply secrets.yaml --include-secret',
    ]))
    .action(async (path: string, o: { prune: boolean; include: string[]; exclude: string[]; includeSecret: boolean; dryRun: boolean }, cmd: Command) => {
      const include = kindList(o.include, '--include');
      const exclude = kindList(o.exclude, '--exclude');
      const { docs, errors } = await readManifests(path);
      if (errors.length) {
        // All-or-nothing: one bad document means nothing is applied, and every problem is listed.
        throw new OcteliumError('INVALID_ARGUMENT', `nothing applied; ${errors.length} error(s):\n${errors.map((e) => '  ' + formatManifestError(e)).join('\n')}`);
      }
      const selected = (k: KindName) =>
        (include.length ? include.includes(k) : KINDS[k].applyByDefault || (k === 'Secret' && o.includeSecret)) &&
        !exclude.includes(k) && (k !== 'Secret' || o.includeSecret);
      const resources = [];
      for (const d of docs) {
        if (selected(d.resource.kind)) resources.push(d.resource);
        else if (d.resource.kind === 'Secret' && !o.includeSecret) console.error(`secret/${d.resource.metadata.name} skipped (use --include-secret to apply Secrets)`);
      }
      const pruneKinds = (Object.keys(KINDS) as KindName[]).filter((k) => selected(k) && !KINDS[k].readOnly);
      const client = await clientFor(cmd);
      const out = await client.apply({ resources, dryRun: o.dryRun, prune: o.prune, pruneKinds });
      for (const r of out.results) console.log(`${r.kind.toLowerCase()}/${r.name} ${r.action}${o.dryRun ? ' (dry run)' : ''}`);
      for (const w of out.warnings) console.error(`warning: ${w}`);
    });
}
