import type { Command } from 'commander';
import { authenticatedClient, exampleText, resolveDomain, toYaml } from '@octelium-ts/shared';
import { readConnectStates } from '../agent/state.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('show the user, session and cluster, and every `octelium connect` running for it')
    .option('-o, --out <format>', 'yaml (default) or json', 'yaml')
    .addHelpText('after', exampleText(['octelium status', 'octelium status -o json | jq \'.connect[] | {pid, state, serving}\'']))
    .action(async (o: { out: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals() as { domain?: string };
      const domain = resolveDomain(g);
      const client = await authenticatedClient({ domain });
      const me = await client.whoami();
      const status = {
        cluster: { domain, url: client.baseURL },
        user: { name: me.user.metadata.name, type: (me.user.spec as { type?: string }).type, email: (me.user.spec as { email?: string }).email, isAdmin: me.isAdmin },
        session: me.session ? { name: me.session.metadata.name, type: (me.session.status as { type?: string })?.type, expiresAt: (me.session.spec as { expiresAt?: string }).expiresAt } : undefined,
        // Every local `octelium connect` agent for this cluster, from the state files they keep up to date (none: []).
        connect: readConnectStates(domain),
      };
      console.log(o.out === 'json' ? JSON.stringify(status, null, 2) : toYaml(status).trimEnd());
    });
}
