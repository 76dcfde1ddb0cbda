import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { OcteliumError } from '@octelium-ts/shared';
import { table } from '../output.js';
import { clientFor } from './common.js';

interface Explained {
  allowed: boolean;
  reason: { type: string; details?: { rule?: string; source?: string } };
  rules: Array<{ source: string; rule: string; effect: string; matched: boolean; error?: string; priority: number }>;
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('work with policies');
  policy
    .command('test')
    .description("evaluate a Service's effective policies for a user and a request, without sending it")
    .requiredOption('--service <svc>', 'the Service (svc or svc.ns)')
    .requiredOption('--user <user>', 'the User making the request')
    .option('--method <method>', 'HTTP method', 'POST')
    .option('--path <path>', 'request path as the Service sees it', '/')
    .option('--header <k:v>', 'request header (repeatable)', collect, [])
    .option('--body <json>', 'JSON request body (bodyMap)')
    .option('--body-file <file>', 'JSON request body from a file')
    .option('--tool <name>', 'shorthand: an MCP tools/call of this tool (with --args)')
    .option('--args <json>', 'tool arguments for --tool', '{}')
    .option('-o, --out <format>', 'json for machine-readable output')
    .action(async (o: { service: string; user: string; method: string; path: string; header: string[]; body?: string; bodyFile?: string; tool?: string; args: string; out?: string }, cmd: Command) => {
      let body: unknown;
      try {
        if (o.tool) body = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: o.tool, arguments: JSON.parse(o.args) } };
        else if (o.bodyFile) body = JSON.parse(readFileSync(o.bodyFile, 'utf8'));
        else if (o.body) body = JSON.parse(o.body);
      } catch (e) {
        throw new OcteliumError('INVALID_ARGUMENT', `request body is not valid JSON: ${(e as Error).message}`);
      }
      const headers: Record<string, string> = {};
      for (const h of o.header) {
        const i = h.indexOf(':');
        if (i <= 0) throw new OcteliumError('INVALID_ARGUMENT', `--header "${h}": use name:value`);
        headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
      }
      const client = await clientFor(cmd);
      const out = await client.call<Explained>('POST', '/policy/test', { service: o.service, user: o.user, request: { method: o.method, path: o.path, headers, body } });
      if (o.out === 'json') return console.log(JSON.stringify(out, null, 2));
      const by = out.reason.details?.rule ? ` by rule "${out.reason.details.rule}"${out.reason.details.source ? ` (${out.reason.details.source})` : ''}` : '';
      console.log(`${out.allowed ? 'ALLOWED' : 'DENIED'} (${out.reason.type})${by}\n`);
      console.log(out.rules.length
        ? table(['SOURCE', 'RULE', 'EFFECT', 'PRIORITY', 'MATCHED', 'ERROR'], out.rules.map((r) => [r.source, r.rule, r.effect, r.priority, r.matched, r.error ?? '']))
        : 'No rules apply to this request.');
    });
}
