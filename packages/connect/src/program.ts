import { Command } from 'commander';
import { registerConnect } from './commands/connect.js';
import { registerLogin } from './commands/login.js';
import { registerStatus } from './commands/status.js';

export function buildProgram(): Command {
  const program = new Command('octelium')
    .description('octelium-ts user CLI: login, connect, status, logout')
    .option('--domain <domain>', 'cluster domain, e.g. localhost:8090 (default: $OCTELIUM_DOMAIN or the last login)')
    .showHelpAfterError();
  registerLogin(program);
  registerStatus(program);
  registerConnect(program);
  return program;
}
