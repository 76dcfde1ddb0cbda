import { Option, type Command } from 'commander';
import { readFileSync } from 'node:fs';
import { OcteliumError, exampleText } from '@octelium-ts/shared';
import { table } from '../output.js';
import { clientFor } from './common.js';

interface RuleResult {
  source: string;
  rule: string;
  effect: string;
  matched: boolean;
  outcome?: 'MATCHED' | 'NOT_MATCHED' | 'ERROR';
  error?: string;
  missing?: string[];
  priority: number;
}

interface Explained {
  allowed: boolean;
  reason: { type: string; details?: { rule?: string; source?: string; evaluationError?: string } };
  rules: RuleResult[];
  request?: { method: string; uri: string; bodyMap?: unknown };
}

/** `policy test` exits with this code when the request would be DENIED (0: ALLOWED, 1: the test itself failed). */
export const EXIT_DENIED = 2;

const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE']);

const collect = (v: string, prev: string[]) => [...prev, v];

function parseJSON(what: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new OcteliumError('INVALID_ARGUMENT', `${what} is not valid JSON: ${(e as Error).message}`);
  }
}

interface Opts {
  service: string; user: string; method: string; path: string; header: string[];
  body?: string; bodyFile?: string; tool?: string; args: string;
  jsonrpcMethod?: string; mcpMethod?: string; params?: string; out?: string;
}

/**
 * The HTTP method and JSON body to test. A `--method` that is not an HTTP method (`initialize`,
 * `tools/list`) can only mean a JSON-RPC method, so it is taken as one (sent as POST), like
 * `--jsonrpc-method`; `--tool` is the tools/call shorthand.
 */
function requestOf(o: Opts): { method: string; body: unknown } {
  let rpcMethod = o.jsonrpcMethod ?? o.mcpMethod;
  let method = o.method;
  if (!HTTP_METHODS.has(method.toUpperCase())) {
    if (rpcMethod) throw new OcteliumError('INVALID_ARGUMENT', `--method "${method}" is not an HTTP method (and --jsonrpc-method is set)`);
    rpcMethod = method;
    method = 'POST';
  }
  const bodySources = [rpcMethod && '--jsonrpc-method', o.tool && '--tool', o.body && '--body', o.bodyFile && '--body-file'].filter(Boolean);
  if (bodySources.length > 1) throw new OcteliumError('INVALID_ARGUMENT', `use only one of ${bodySources.join(', ')}`);
  if (o.tool) return { method, body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: o.tool, arguments: parseJSON('--args', o.args) } } };
  if (rpcMethod) {
    const params = o.params === undefined ? undefined : parseJSON('--params', o.params);
    // Notifications carry no id (JSON-RPC 2.0), so a rule on `has(ctx.request.http.bodyMap.id)` sees what a real one sends.
    const id = rpcMethod.startsWith('notifications/') ? {} : { id: 1 };
    return { method, body: { jsonrpc: '2.0', ...id, method: rpcMethod, ...(params === undefined ? {} : { params }) } };
  }
  if (o.bodyFile) return { method, body: parseJSON(`--body-file ${o.bodyFile}`, readFileSync(o.bodyFile, 'utf8')) };
  if (o.body) return { method, body: parseJSON('--body', o.body) };
  return { method, body: undefined };
}

/** Why a rule came out as it did, in one cell. */
function why(r: RuleResult): string {
  if (r.error) return `${r.error} (fail closed: ${r.effect === 'DENY' ? 'counts as matched' : 'counts as not matched'})`;
  if (r.missing?.length) return `missing input → false: ${r.missing.join('; ')}`;
  return '';
}

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('work with policies')
    .addHelpText('after', exampleText(['octeliumctl policy test --service my-mcp --user agent-1 --tool add --args \'{"a":4,"b":7}\'']));
  policy
    .command('test')
    .description(`evaluate a Service's effective policies for a user and a request, without sending it; exits 0 when ALLOWED, ${EXIT_DENIED} when DENIED, 1 on errors`)
    .requiredOption('--service <svc>', 'the Service (svc or svc.ns)')
    .requiredOption('--user <user>', 'the User making the request')
    .option('--method <method>', 'HTTP method; anything else (initialize, tools/list …) is taken as a JSON-RPC method', 'POST')
    .option('--path <path>', 'request path as the Service sees it', '/')
    .option('--header <k:v>', 'request header (repeatable)', collect, [])
    .option('--body <json>', 'JSON request body (bodyMap)')
    .option('--body-file <file>', 'JSON request body from a file')
    .option('--tool <name>', 'shorthand: an MCP tools/call of this tool (with --args)')
    .option('--args <json>', 'tool arguments for --tool', '{}')
    .option('--jsonrpc-method <method>', 'a JSON-RPC (MCP) request of this method, e.g. initialize, tools/list (with --params)')
    .addOption(new Option('--mcp-method <method>', 'same as --jsonrpc-method').hideHelp())
    .option('--params <json>', 'JSON-RPC params for --jsonrpc-method')
    .option('-o, --out <format>', 'json for machine-readable output')
    .addHelpText('after', exampleText([
      'octeliumctl policy test --service my-mcp --user agent-1 --tool add --args \'{"a":4,"b":7}\'',
      'octeliumctl policy test --service my-mcp --user agent-1 --method initialize',
      'octeliumctl policy test --service my-mcp --user agent-1 --method GET --path /mcp -o json',
    ]))
    .action(async (o: Opts, cmd: Command) => {
      const { method, body } = requestOf(o);
      const headers: Record<string, string> = {};
      for (const h of o.header) {
        const i = h.indexOf(':');
        if (i <= 0) throw new OcteliumError('INVALID_ARGUMENT', `--header "${h}": use name:value`);
        headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
      }
      const client = await clientFor(cmd);
      const out = await client.call<Explained>('POST', '/policy/test', { service: o.service, user: o.user, request: { method, path: o.path, headers, body } });
      // A script can branch on the decision without parsing the output.
      if (!out.allowed) process.exitCode = EXIT_DENIED;
      if (o.out === 'json') return console.log(JSON.stringify(out, null, 2));
      const by = out.reason.details?.rule ? ` by rule "${out.reason.details.rule}"${out.reason.details.source ? ` (${out.reason.details.source})` : ''}` : '';
      const failClosed = out.reason.details?.evaluationError ? `, the rule could not be evaluated (${out.reason.details.evaluationError}) and fails closed` : '';
      console.log(`${out.allowed ? 'ALLOWED' : 'DENIED'} (${out.reason.type})${by}${failClosed}`);
      const rpc = body && typeof body === 'object' && typeof (body as { method?: unknown }).method === 'string' ? ` ${(body as { method: string }).method}` : '';
      console.log(`request: ${method} ${o.path}${rpc}\n`);
      console.log(out.rules.length
        ? table(['SOURCE', 'RULE', 'EFFECT', 'PRIORITY', 'RESULT', 'WHY'], out.rules.map((r) => [r.source, r.rule, r.effect, r.priority, r.outcome ?? (r.matched ? 'MATCHED' : 'NOT_MATCHED'), why(r)]))
        : 'No rules apply to this request.');
    });
}
