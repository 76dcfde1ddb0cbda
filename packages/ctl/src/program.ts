import { Command } from 'commander';
import { EXIT_CODES_HELP, addCompletion, examples } from '@octelium-ts/shared';
import { registerApply } from './commands/apply.js';
import { registerCreate } from './commands/create.js';
import { registerDelete } from './commands/delete.js';
import { registerGet } from './commands/get.js';
import { registerLogs } from './commands/logs.js';
import { registerPolicy } from './commands/policy.js';
import { registerCompleters } from './completers.js';

export function buildProgram(): Command {
  const program = new Command('octeliumctl')
    .description('octelium-ts admin CLI: apply, get, delete, create, logs')
    .option('--domain <domain>', 'cluster domain, e.g. localhost:8090 (default: $OCTELIUM_DOMAIN, else --context, else the current context)')
    .option('--context <name>', 'a cluster you are logged in to (octelium context list); --domain and $OCTELIUM_DOMAIN win over it')
    .showHelpAfterError();
  for (const register of [registerApply, registerGet, registerDelete, registerCreate, registerLogs, registerPolicy]) register(program);
  addCompletion(program, 'octeliumctl');
  registerCompleters(program);
  examples(program, [
    'octeliumctl apply my-mcp.yaml',
    'octeliumctl get svc -o wide',
    'octeliumctl --context cluster.example.com get users',
    'source <(octeliumctl completion bash)',
  ]);
  program.addHelpText('after', EXIT_CODES_HELP);
  return program;
}
