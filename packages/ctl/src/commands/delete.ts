import type { Command } from 'commander';
import { OcteliumError, exampleText, kindNames, lookupKind } from '@octelium-ts/shared';
import { clientFor } from './common.js';

export function registerDelete(program: Command): void {
  program
    .command('delete')
    .alias('del')
    .description('delete a resource (refused while other resources refer to it)')
    .argument('<kind>')
    .argument('<name>')
    .addHelpText('after', exampleText(['octeliumctl delete svc my-mcp', 'octeliumctl delete session root-1a2b3c4d   # revokes it']))
    .action(async (kind: string, name: string, _o: unknown, cmd: Command) => {
      const def = lookupKind(kind);
      if (!def) throw new OcteliumError('INVALID_ARGUMENT', `unknown kind "${kind}" (kinds: ${kindNames()})`);
      const client = await clientFor(cmd);
      const r = await client.delete(def.kind, name);
      console.log(`${def.kind.toLowerCase()}/${r.metadata.name} deleted`);
    });
}
