import type { Command } from 'commander';
import { ApiClient, OcteliumError, loadLogin, removeLogin, resolveDomain, saveLogin } from '@octelium-ts/shared';

export function registerLogin(program: Command): void {
  program
    .command('login')
    .description('exchange an auth token for a Session and store it under ~/.config/octelium/')
    .option('--auth-token <token>', 'auth-token Credential (default: $OCTELIUM_AUTH_TOKEN)')
    .action(async (o: { authToken?: string }, cmd: Command) => {
      const domain = resolveDomain(cmd.optsWithGlobals());
      const token = o.authToken ?? process.env.OCTELIUM_AUTH_TOKEN;
      if (!token) throw new OcteliumError('INVALID_ARGUMENT', 'pass --auth-token <TOKEN> (or set OCTELIUM_AUTH_TOKEN)');
      const res = await new ApiClient({ domain }).login(token);
      saveLogin({ domain, accessToken: res.accessToken, expiresAt: res.expiresAt, user: res.user.metadata.name, session: res.session.metadata.name });
      console.log(`Logged in to ${domain} as ${res.user.metadata.name} (session ${res.session.metadata.name}, expires ${res.expiresAt})`);
    });

  program
    .command('logout')
    .description('end the stored Session')
    .action(async (_o: unknown, cmd: Command) => {
      const domain = resolveDomain(cmd.optsWithGlobals());
      const state = loadLogin(domain);
      if (!state) {
        console.log(`Not logged in to ${domain}`);
        return;
      }
      // Revoke server-side first; a cluster that is gone must not keep us from forgetting the token.
      await new ApiClient({ domain, accessToken: state.accessToken }).logout().catch(() => undefined);
      removeLogin(domain);
      console.log(`Logged out of ${domain}`);
    });
}
