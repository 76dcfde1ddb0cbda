import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OcteliumError, clusterURL, type LoginResponse } from '@octelium-ts/shared';

/** How long `octelium login` waits for the person to finish signing in. */
export const BROWSER_LOGIN_TIMEOUT_MS = 5 * 60_000;

const DONE_PAGE = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signed in · Octelium</title></head>' +
  '<body style="font:16px system-ui;margin:4rem auto;max-width:30rem"><h1>Signed in</h1><p>You can close this window and go back to the terminal.</p></body></html>';

/**
 * Opens `url` in the desktop's browser when there is one (xdg-open / open). Never fails: without a browser the
 * person opens the printed URL themselves, perhaps on another machine's browser pointed at this one.
 */
function tryOpenBrowser(url: string): void {
  const cmd = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? undefined : 'xdg-open';
  if (!cmd) return;
  try {
    const child = spawn(cmd, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    /* no browser here: the printed URL is enough */
  }
}

/** The first `GET /callback?code=…` on the loopback listener (RFC 8252 §7.3); anything else is a 404. */
function waitForCode(server: Server, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new OcteliumError('UNAUTHENTICATED', `no sign-in within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    server.on('request', (req, res) => {
      const u = new URL(req.url ?? '/', 'http://127.0.0.1');
      const code = u.searchParams.get('code');
      if (req.method !== 'GET' || u.pathname !== '/callback' || !code || code.length > 512) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', connection: 'close' }).end(DONE_PAGE);
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/**
 * `octelium login` without a token (design.md §7): a HUMAN user signs in through the cluster's `/login` page in a
 * browser. The CLI listens on a loopback port, sends the browser to `/login?cli=PORT&cli_challenge=S256(verifier)`,
 * gets a one-time code back on `http://127.0.0.1:PORT/callback`, and redeems it with the verifier at
 * `POST /login/token` — a code caught by anyone else (another local process, a page that guessed the port) is
 * useless without the verifier, which never leaves this process.
 */
export async function browserLogin(domain: string, opts: { openBrowser: boolean; timeoutMs?: number; log: (line: string) => void }): Promise<LoginResponse> {
  const base = clusterURL(domain);
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  try {
    const port = (server.address() as AddressInfo).port;
    const url = `${base}/login?cli=${port}&cli_challenge=${challenge}`;
    opts.log(`To sign in, open this URL in a browser:\n\n  ${url}\n\nWaiting for the sign-in to finish…`);
    if (opts.openBrowser) tryOpenBrowser(url);
    const code = await waitForCode(server, opts.timeoutMs ?? BROWSER_LOGIN_TIMEOUT_MS);
    let res: Response;
    try {
      res = await fetch(`${base}/login/token`, { method: 'POST', body: new URLSearchParams({ code, code_verifier: verifier }), signal: AbortSignal.timeout(15_000) });
    } catch (e) {
      throw new OcteliumError('UNREACHABLE', `cannot reach cluster at ${base}: ${(e as Error).message}`);
    }
    const body = (await res.json().catch(() => undefined)) as (LoginResponse & { error?: { message?: string } }) | undefined;
    if (res.status !== 200 || !body?.accessToken) throw new OcteliumError('UNAUTHENTICATED', `the cluster refused the sign-in: ${body?.error?.message ?? `HTTP ${res.status}`}`);
    return body;
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

/** `octelium login --assertion JWT`: RFC 7523 jwt-bearer at `/oauth2/token`, then who the Session belongs to. */
export async function assertionLogin(domain: string, assertion: string): Promise<{ accessToken: string; expiresAt: string; user: string; session: string }> {
  const base = clusterURL(domain);
  const call = async (path: string, init: RequestInit) => {
    try {
      return await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(15_000) });
    } catch (e) {
      throw new OcteliumError('UNREACHABLE', `cannot reach cluster at ${base}: ${(e as Error).message}`);
    }
  };
  const res = await call('/oauth2/token', { method: 'POST', body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }) });
  const body = (await res.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string; error_description?: string };
  if (res.status !== 200 || !body.access_token) throw new OcteliumError('UNAUTHENTICATED', `the cluster refused the assertion: ${body.error ?? `HTTP ${res.status}`}${body.error_description ? `: ${body.error_description}` : ''}`);
  const who = await call('/api/v1/whoami', { headers: { authorization: `Bearer ${body.access_token}` } });
  const me = (await who.json().catch(() => ({}))) as { user?: { metadata: { name: string } }; session?: { metadata: { name: string } } };
  if (who.status !== 200 || !me.user || !me.session) throw new OcteliumError('UNAUTHENTICATED', `the new Session does not answer /whoami (HTTP ${who.status})`);
  return { accessToken: body.access_token, expiresAt: new Date(Date.now() + (body.expires_in ?? 3600) * 1000).toISOString(), user: me.user.metadata.name, session: me.session.metadata.name };
}
