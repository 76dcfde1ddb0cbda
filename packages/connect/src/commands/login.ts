import type { Command } from 'commander';
import { ApiClient, OcteliumError, exampleText, exchangeAuthToken, loadLogin, removeLogin, resolveDomain, saveLogin } from '@octelium-ts/shared';
import { assertionLogin, browserLogin } from './browser-login.js';

export function registerLogin(program: Command): void {
  program
    .command('login')
    .description('sign in and store a Session under ~/.config/octelium/: with an auth token, a workload OIDC assertion, or (no token) in a browser through the cluster\'s identity providers')
    .option('--auth-token <token>', 'auth-token Credential (default: $OCTELIUM_AUTH_TOKEN)')
    .option('--assertion <jwt>', 'an OIDC token of a workload (e.g. a CI job\'s), accepted by an oidcIdentityToken IdentityProvider')
    .option('--no-browser', 'only print the sign-in URL; do not try to open a browser')
    .addHelpText('after', exampleText([
      'octelium login --domain localhost:8090 --auth-token "$(cat .octelium/bootstrap-token)"',
      'octelium login --domain cluster.example.com            # sign in in a browser',
      'octelium login --domain cluster.example.com --assertion "$CI_OIDC_TOKEN"',
    ]) + '\n\nAuth tokens come from the cluster\'s bootstrap-token file (the root user) or `octeliumctl create cred NAME --user USER --type auth-token`.\nEach cluster keeps its own login; the last one logged in to becomes the current context (octelium context list).')
    .action(async (o: { authToken?: string; assertion?: string; browser: boolean }, cmd: Command) => {
      const domain = resolveDomain(cmd.optsWithGlobals());
      const token = o.authToken ?? process.env.OCTELIUM_AUTH_TOKEN;
      if (token && o.assertion) throw new OcteliumError('INVALID_ARGUMENT', 'pass either --auth-token or --assertion, not both');
      let state: { accessToken: string; expiresAt: string; user: string; session: string };
      if (o.assertion) {
        state = await assertionLogin(domain, o.assertion);
      } else if (token) {
        const res = await exchangeAuthToken(new ApiClient({ domain }), token);
        state = { accessToken: res.accessToken, expiresAt: res.expiresAt, user: res.user.metadata.name, session: res.session.metadata.name };
      } else {
        // HUMAN users: the browser sign-in; its instructions go to stderr so stdout keeps only the result line.
        const res = await browserLogin(domain, { openBrowser: o.browser, log: (l) => console.error(l) });
        state = { accessToken: res.accessToken, expiresAt: res.expiresAt, user: res.user.metadata.name, session: res.session.metadata.name };
      }
      saveLogin({ domain, ...state });
      console.log(`Logged in to ${domain} as ${state.user} (session ${state.session}, expires ${state.expiresAt})`);
    });

  program
    .command('logout')
    .description('end the stored Session')
    .addHelpText('after', exampleText(['octelium logout', 'octelium --context cluster.example.com logout']))
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
