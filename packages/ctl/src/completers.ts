import type { Command } from 'commander';
import { apiNames, contextNames, kindWords, lookupKind, setCompleter, type CompletionRequest } from '@octelium-ts/shared';

const CRED_TYPES = ['auth-token', 'access-token', 'oauth2'];

/** Values of options several commands share, looked up in the cluster where they name resources. */
function optionValues(req: CompletionRequest): string[] | Promise<string[]> {
  switch (req.option) {
    case '--context': return contextNames();
    case '--user': return apiNames('User', req.opts);
    case '--service': return apiNames('Service', req.opts);
    case '--namespace': return apiNames('Namespace', req.opts);
    case '--type': return CRED_TYPES;
    case '--status': return ['ALLOWED', 'DENIED'];
    case '--out': return ['table', 'wide', 'yaml', 'json'];
    case '--include': case '--exclude': return kindWords();
    case '--method': case '--jsonrpc-method': return ['initialize', 'tools/list', 'tools/call', 'resources/list', 'prompts/list', 'GET', 'POST', 'DELETE'];
    default: return [];
  }
}

/** `get|delete KIND <TAB>`: the kind names, then that kind's resource names from the API. */
function kindThenName(req: CompletionRequest): string[] | Promise<string[]> {
  if (req.option) return optionValues(req);
  if (req.argIndex === 0) return kindWords();
  const def = req.argIndex === 1 ? lookupKind(req.args[0]) : undefined;
  return def ? apiNames(def.kind, req.opts, { user: req.opts.user, namespace: req.opts.namespace }) : [];
}

/** Resource names in completion: every command gets option values; get/delete also kinds and names. */
export function registerCompleters(program: Command): void {
  const walk = (cmd: Command) => {
    const name = cmd.name();
    setCompleter(cmd, name === 'get' || name === 'delete' ? kindThenName : (req) => (req.option ? optionValues(req) : []));
    cmd.commands.forEach(walk);
  };
  walk(program);
}
