import type { Command } from 'commander';
import { OcteliumError, exampleText, kindNames, lookupKind } from '@octelium-ts/shared';
import { formatResources, parseFormat } from '../output.js';
import { clientFor } from './common.js';

export function registerGet(program: Command): void {
  program
    .command('get')
    .description(`list resources or show one (kinds: ${kindNames()})`)
    .argument('<kind>')
    .argument('[name]')
    .option('-o, --out <format>', 'table (default), wide (more columns), yaml or json')
    .option('--user <user>', 'credentials/sessions of this user')
    .option('--namespace <ns>', 'services of this namespace')
    .addHelpText('after', exampleText([
      'octeliumctl get svc',
      'octeliumctl get svc my-mcp -o yaml > my-mcp.yaml   # re-applies as is',
      'octeliumctl get svc -o wide',
      'octeliumctl get cred --user agent-1',
    ]) + '\n\nA Service\'s STATE is its configuration (Pending references, managed containers), not whether its upstream answers.')
    .action(async (kind: string, name: string | undefined, o: { out?: string; user?: string; namespace?: string }, cmd: Command) => {
      const def = lookupKind(kind);
      if (!def) throw new OcteliumError('INVALID_ARGUMENT', `unknown kind "${kind}" (kinds: ${kindNames()})`);
      const format = parseFormat(o.out);
      const client = await clientFor(cmd);
      const items = name ? [await client.get(def.kind, name)] : (await client.list(def.kind, { user: o.user, namespace: o.namespace })).items;
      console.log(formatResources(def.kind, items, Boolean(name), format));
    });
}
