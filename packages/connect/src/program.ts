import { Command } from 'commander';
import { EXIT_CODES_HELP, addCompletion, apiNames, contextNames, examples, setCompleter, type CompletionRequest } from '@octelium-ts/shared';
import { registerConnect } from './commands/connect.js';
import { registerContext } from './commands/context.js';
import { registerLogin } from './commands/login.js';
import { registerStatus } from './commands/status.js';

export function buildProgram(): Command {
  const program = new Command('octelium')
    .description('octelium-ts user CLI: login, connect, status, logout, context')
    .option('--domain <domain>', 'cluster domain, e.g. localhost:8090 (default: $OCTELIUM_DOMAIN, else --context, else the current context)')
    .option('--context <name>', 'a cluster you are logged in to (octelium context list); --domain and $OCTELIUM_DOMAIN win over it')
    .showHelpAfterError();
  registerLogin(program);
  registerStatus(program);
  registerConnect(program);
  registerContext(program);
  addCompletion(program, 'octelium');
  const walk = (cmd: Command) => {
    setCompleter(cmd, cmd.name() === 'use' ? (req) => (req.option ? optionValues(req) : contextNames()) : optionValues);
    cmd.commands.forEach(walk);
  };
  walk(program);
  examples(program, [
    'octelium login --domain localhost:8090 --auth-token "$(cat .octelium/bootstrap-token)"',
    'octelium connect --serve laptop-mcp -p my-mcp:3333',
    'octelium context use cluster.example.com',
    'source <(octelium completion bash)',
  ]);
  program.addHelpText('after', EXIT_CODES_HELP);
  return program;
}

/** Option values in completion: contexts, and Service names (when the cluster lets this user list them). */
function optionValues(req: CompletionRequest): string[] | Promise<string[]> {
  switch (req.option) {
    case '--context': return contextNames();
    case '--serve': return apiNames('Service', req.opts);
    case '--publish': return apiNames('Service', req.opts).then((names) => names.map((n) => `${n}:`));
    case '--out': return ['yaml', 'json'];
    default: return [];
  }
}
