import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GitHubAccount { id: number; login: string; emails: Array<{ email: string; primary: boolean; verified: boolean }> }

/**
 * A **stand-in for github.com** (which cannot be reached from here), implementing what the cluster uses of
 * GitHub's OAuth web application flow and REST API as GitHub documents them:
 * - `GET /login/oauth/authorize` (client_id, redirect_uri, scope, state, code_challenge S256) — approves at once
 *   as `ctl.account` and redirects back with `code` and `state`;
 * - `POST /login/oauth/access_token` (client_id, client_secret, code, redirect_uri, code_verifier) — JSON when
 *   asked (`Accept: application/json`); like GitHub, a bad code or secret is a 200 with an `error` field;
 * - `GET /user` and `GET /user/emails` with `Authorization: Bearer <token>` (404 `/user/emails` without the
 *   `user:email` scope, as GitHub answers).
 * Authorization and token endpoints are on the "github.com" origin, the API on the same server under `/api`.
 */
export async function startGitHubStandIn(client: { clientId: string; clientSecret: string }) {
  const ctl: { account: GitHubAccount; requests: string[] } = { account: { id: 1, login: 'octocat', emails: [] }, requests: [] };
  const codes = new Map<string, { account: GitHubAccount; redirectUri: string; challenge: string; scope: string }>();
  const tokens = new Map<string, { account: GitHubAccount; scope: string }>();
  const server = createServer(async (req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    ctl.requests.push(`${req.method} ${u.pathname}`);
    const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
    if (u.pathname === '/login/oauth/authorize') {
      if (u.searchParams.get('client_id') !== client.clientId) return json(404, { error: 'unknown client' });
      const code = randomBytes(10).toString('hex');
      codes.set(code, { account: structuredClone(ctl.account), redirectUri: u.searchParams.get('redirect_uri')!, challenge: u.searchParams.get('code_challenge') ?? '', scope: u.searchParams.get('scope') ?? '' });
      const back = new URL(u.searchParams.get('redirect_uri')!);
      back.searchParams.set('code', code);
      back.searchParams.set('state', u.searchParams.get('state') ?? '');
      return void res.writeHead(302, { location: back.href }).end();
    }
    if (u.pathname === '/login/oauth/access_token' && req.method === 'POST') {
      let body = '';
      for await (const c of req) body += c;
      const f = new URLSearchParams(body);
      const basic = req.headers.authorization?.startsWith('Basic ') ? Buffer.from(req.headers.authorization.slice(6), 'base64').toString().split(':') : undefined;
      const id = f.get('client_id') ?? basic?.[0], secret = f.get('client_secret') ?? basic?.[1];
      if (id !== client.clientId || secret !== client.clientSecret) return json(200, { error: 'incorrect_client_credentials', error_description: 'The client_id and/or client_secret passed are incorrect.' });
      const c = codes.get(f.get('code') ?? '');
      codes.delete(f.get('code') ?? '');
      const verifierOk = c && (!c.challenge || createHash('sha256').update(f.get('code_verifier') ?? '').digest('base64url') === c.challenge);
      if (!c || !verifierOk || f.get('redirect_uri') !== c.redirectUri) return json(200, { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' });
      const token = `gho_${randomBytes(16).toString('hex')}`;
      tokens.set(token, { account: c.account, scope: c.scope });
      return json(200, { access_token: token, token_type: 'bearer', scope: c.scope.replace(/ /g, ',') });
    }
    const t = tokens.get(req.headers.authorization?.replace(/^Bearer /, '') ?? '');
    if (u.pathname.startsWith('/api/') && !t) return json(401, { message: 'Requires authentication' });
    if (u.pathname === '/api/user') return json(200, { login: t!.account.login, id: t!.account.id, avatar_url: `https://avatars.example/u/${t!.account.id}`, type: 'User' });
    if (u.pathname === '/api/user/emails') {
      if (!t!.scope.split(' ').includes('user:email')) return json(404, { message: 'Not Found' });
      return json(200, t!.account.emails.map((e) => ({ ...e, visibility: e.primary ? 'private' : null })));
    }
    json(404, { message: 'Not Found' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    ctl,
    spec: { authorizationURL: `${base}/login/oauth/authorize`, tokenURL: `${base}/login/oauth/access_token`, apiURL: `${base}/api` },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
