import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { OcteliumError, exampleText, parseHumanDuration, type CredentialType, type Resource } from '@octelium-ts/shared';
import { clientFor } from './common.js';

const CRED_TYPES: Record<string, CredentialType> = { 'auth-token': 'AUTH_TOKEN', 'access-token': 'ACCESS_TOKEN', oauth2: 'OAUTH2' };

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function registerCreate(program: Command): void {
  const create = program.command('create').description('create credentials and secrets')
    .addHelpText('after', exampleText(['octeliumctl create cred agent-1-oauth --user agent-1 --type oauth2 -o json', 'octeliumctl create secret api-key --value sk-…']));

  create
    .command('credential')
    .aliases(['cred', 'creds', 'credentials'])
    .description('create a Credential; its token is shown only now')
    .argument('<name>')
    .requiredOption('--user <user>', 'the User the credential authenticates as')
    .option('--type <type>', 'auth-token | access-token | oauth2', 'auth-token')
    .option('--expire-in <duration>', 'e.g. 2hours, 30days, 1week, 3months')
    .option('-o, --out <format>', 'json for machine-readable output')
    .addHelpText('after', exampleText([
      'octeliumctl create cred mcp-01-auth --user mcp-01 --type auth-token -o json   # for octelium login / connect',
      'octeliumctl create cred agent-1-oauth --user agent-1 --type oauth2 -o json    # clientID + clientSecret',
      'octeliumctl create cred ci --user ci-bot --type access-token --expire-in 30days',
    ]))
    .action(async (name: string, o: { user: string; type: string; expireIn?: string; out?: string }, cmd: Command) => {
      const type = CRED_TYPES[o.type.toLowerCase()];
      if (!type) throw new OcteliumError('INVALID_ARGUMENT', `--type must be one of ${Object.keys(CRED_TYPES).join(', ')}`);
      let expiresAt: string | undefined;
      if (o.expireIn) {
        try {
          expiresAt = new Date(Date.now() + parseHumanDuration(o.expireIn)).toISOString();
        } catch (e) {
          throw new OcteliumError('INVALID_ARGUMENT', `--expire-in: ${(e as Error).message}`);
        }
      }
      const client = await clientFor(cmd);
      const cred: Resource = { apiVersion: 'core/v1', kind: 'Credential', metadata: { name }, spec: { type, user: o.user, ...(expiresAt ? { expiresAt } : {}) } };
      const { credential, token } = await client.createCredential(cred);
      if (o.out === 'json') {
        console.log(JSON.stringify({ name: credential.metadata.name, user: o.user, type, ...(expiresAt ? { expiresAt } : {}), ...token }, null, 2));
        return;
      }
      if (token.authenticationToken) console.log(`AuthenticationToken: ${token.authenticationToken}`);
      if (token.accessToken) console.log(`AccessToken: ${token.accessToken}`);
      if (token.clientID) console.log(`ClientID: ${token.clientID}\nClientSecret: ${token.clientSecret}`);
      console.error('This token is shown only once.');
    });

  create
    .command('secret')
    .alias('sec')
    .description('create a Secret from --value, --file or stdin (the value is never shown again)')
    .argument('<name>')
    .option('--value <value>')
    .option('--file <file>')
    .addHelpText('after', exampleText(['octeliumctl create secret api-key --value sk-…', 'octeliumctl create secret tls-key --file key.pem', 'printf %s "$TOKEN" | octeliumctl create secret gh-token']))
    .action(async (name: string, o: { value?: string; file?: string }, cmd: Command) => {
      const value = o.value ?? (o.file ? readFileSync(o.file, 'utf8') : await readStdin());
      if (!value) throw new OcteliumError('INVALID_ARGUMENT', 'a secret needs a value: --value, --file or stdin');
      const client = await clientFor(cmd);
      const s = await client.create({ apiVersion: 'core/v1', kind: 'Secret', metadata: { name }, spec: {}, data: { value } });
      console.log(`secret/${s.metadata.name} created`);
    });
}
