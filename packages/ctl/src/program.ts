import { Command } from 'commander';
import { registerApply } from './commands/apply.js';
import { registerCreate } from './commands/create.js';
import { registerDelete } from './commands/delete.js';
import { registerGet } from './commands/get.js';
import { registerLogs } from './commands/logs.js';
import { registerPolicy } from './commands/policy.js';

export function buildProgram(): Command {
  const program = new Command('octeliumctl')
    .description('octelium-ts admin CLI: apply, get, delete, create, logs')
    .option('--domain <domain>', 'cluster domain, e.g. localhost:8090 (default: $OCTELIUM_DOMAIN or the last login)')
    .showHelpAfterError();
  for (const register of [registerApply, registerGet, registerDelete, registerCreate, registerLogs, registerPolicy]) register(program);
  return program;
}
