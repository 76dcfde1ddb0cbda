/**
 * `npm run demo`: the cluster on embedded SQLite (./.octelium) plus the demo MCP server (add, subtract),
 * a Service in front of it with the brief's L7 policy, a client User with an OAuth2 Credential, and a
 * self-check call through the gateway. Stays in the foreground; Ctrl-C stops everything.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ApiClient, type Resource } from '@octelium-ts/shared';
import { startCluster } from '../cluster.js';
import { startDemoMcpServer } from './mcp-demo-server.js';

const dataDir = resolve(process.env.OCTELIUM_DATA_DIR ?? '.octelium');
const port = Number(process.env.PORT ?? 8090);

const cluster = await startCluster({ dataDir, port });
const mcp = await startDemoMcpServer({ port: Number(process.env.DEMO_MCP_PORT ?? 0) });
const authToken = readFileSync(join(dataDir, 'bootstrap-token'), 'utf8').trim();
const api = new ApiClient({ domain: cluster.domain });
api.accessToken = (await api.login(authToken)).accessToken;

const r = (kind: Resource['kind'], name: string, spec: unknown): Resource => ({ apiVersion: 'core/v1', kind, metadata: { name }, spec });
await api.apply({
  resources: [
    r('User', 'demo-client', { type: 'WORKLOAD' }),
    r('Service', 'demo-mcp', {
      mode: 'HTTP', isPublic: true,
      config: {
        upstream: { url: mcp.url },
        http: { enableRequestBuffering: true, body: { mode: 'JSON', maxRequestSize: 100000 } },
      },
      authorization: {
        inlinePolicies: [{
          spec: {
            rules: [
              { name: 'mcp-session', effect: 'ALLOW', condition: { match: 'ctx.request.http.method != "POST" || ctx.request.http.bodyMap.method != "tools/call"' } },
              { name: 'small-sums', effect: 'ALLOW', condition: { all: { of: [
                { match: 'ctx.request.http.bodyMap.params.name in ["add", "subtract"]' },
                { match: 'ctx.request.http.bodyMap.params.arguments.a < 1000' },
              ] } } },
            ],
          },
        }],
      },
    }),
  ],
});
// A fresh OAuth2 Credential per demo run: secrets are shown once, so an old one cannot be re-shown.
await api.delete('Credential', 'demo-client-oauth2').catch(() => undefined);
const { token } = await api.createCredential(r('Credential', 'demo-client-oauth2', { type: 'OAUTH2', user: 'demo-client' }));

const tokenRes = await fetch(`${cluster.url}/oauth2/token`, {
  method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', client_id: token.clientID!, client_secret: token.clientSecret! }),
});
const { access_token } = (await tokenRes.json()) as { access_token: string };
const endpoint = `${cluster.url}/svc/demo-mcp/mcp`;
const client = new Client({ name: 'octelium-demo-check', version: '1.0.0' });
await client.connect(new StreamableHTTPClientTransport(new URL(endpoint), { requestInit: { headers: { authorization: `Bearer ${access_token}` } } }));
const result = (await client.callTool({ name: 'add', arguments: { a: 4, b: 7 } })) as { content: Array<{ text: string }> };
await client.close();

console.log(`
octelium-ts demo is running (Ctrl-C to stop)
  cluster           ${cluster.url}   data: ${dataDir}
  demo MCP server   ${mcp.url}/mcp (tools: add, subtract) — only reachable on loopback
  Service demo-mcp  ${endpoint}   (host form: http://demo-mcp.${cluster.domain}/mcp)
  self-check        tools/call add {a:4,b:7} through the gateway = ${result.content[0].text}
  root auth token   ${cluster.bootstrapToken ?? authToken}${cluster.bootstrapToken ? '   (first start: also in ' + dataDir + '/bootstrap-token)' : ''}

Try it:
  export OCTELIUM_DOMAIN=${cluster.domain}
  npx octelium login --auth-token $(cat ${dataDir}/bootstrap-token)
  npx octeliumctl get svc
  npx octeliumctl logs

OAuth2 client credentials of user demo-client (shown once):
  CLIENT_ID=${token.clientID}
  CLIENT_SECRET=${token.clientSecret}
  TOKEN=$(curl -s ${cluster.url}/oauth2/token -d grant_type=client_credentials -d client_id=$CLIENT_ID -d client_secret=$CLIENT_SECRET | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')
  npx @modelcontextprotocol/inspector   # transport "Streamable HTTP", URL ${endpoint}, header Authorization: Bearer $TOKEN
`);

const stop = async () => {
  await mcp.close();
  await cluster.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
