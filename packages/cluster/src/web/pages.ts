/**
 * The human-facing pages (/login, /portal, error pages): server-rendered HTML, no script, every value escaped,
 * styled inline (the CSP allows inline styles only). Works with JavaScript off and with a screen reader:
 * landmarks, labelled controls, visible focus, sufficient contrast.
 */
import { escapeHtml } from '../oauth/consent-page.js';

export { escapeHtml };

const STYLE = `
:root{--bg:#f6f8fb;--card:#fff;--ink:#1b2330;--muted:#5b6678;--line:#e3e8ef;--brand:#3b5bdb;--brand-ink:#fff;--danger:#c92a2a;--ok:#2b8a3e}
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--ink)}
a{color:var(--brand)}a:focus-visible,button:focus-visible{outline:3px solid #91a7ff;outline-offset:2px}
header.top{display:flex;align-items:center;justify-content:space-between;padding:.9rem 1.5rem;background:var(--card);border-bottom:1px solid var(--line)}
.brand{display:flex;align-items:center;gap:.6rem;font-weight:650;letter-spacing:.2px;color:var(--ink);text-decoration:none}
.logo{width:28px;height:28px;border-radius:8px;background:linear-gradient(135deg,#4c6ef5,#15aabf);display:inline-block}
main{max-width:60rem;margin:2rem auto;padding:0 1.2rem}
.narrow{max-width:26rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:14px;padding:1.6rem;box-shadow:0 1px 2px rgba(16,24,40,.04),0 8px 24px rgba(16,24,40,.05)}
h1{font-size:1.35rem;margin:0 0 .3rem}h2{font-size:1.05rem;margin:1.8rem 0 .7rem}p.sub{color:var(--muted);margin:.1rem 0 1.2rem}
.idps{list-style:none;padding:0;margin:0;display:grid;gap:.6rem}
.idp{display:flex;align-items:center;gap:.8rem;padding:.8rem 1rem;border:1px solid var(--line);border-radius:10px;text-decoration:none;color:var(--ink);font-weight:550;background:#fff}
.idp:hover{border-color:var(--brand);background:#f3f6ff}.badge{font-size:.72rem;font-weight:600;color:var(--muted);border:1px solid var(--line);border-radius:99px;padding:.05rem .5rem;margin-left:auto;text-transform:uppercase}
.err{background:#fff5f5;border:1px solid #ffc9c9;color:#862e2e;padding:.7rem .9rem;border-radius:10px}
.muted{color:var(--muted)}table{width:100%;border-collapse:collapse}th,td{text-align:left;padding:.6rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.78rem;text-transform:uppercase;letter-spacing:.4px;color:var(--muted);font-weight:600}
code,.url{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}.url{display:block;width:100%;padding:.35rem .5rem;border:1px solid var(--line);border-radius:6px;background:#f8f9fb;color:var(--ink)}
button,.button{font:inherit;font-weight:600;border-radius:8px;padding:.45rem .9rem;border:1px solid var(--line);background:#fff;color:var(--ink);cursor:pointer}
button.primary{background:var(--brand);border-color:var(--brand);color:var(--brand-ink)}button.danger{color:var(--danger)}
.who{display:flex;align-items:center;gap:.8rem}.pill{font-size:.75rem;border-radius:99px;padding:.1rem .55rem;background:#e7f5ff;color:#1864ab;font-weight:600}
.current{background:#ebfbee;color:var(--ok)}footer{color:var(--muted);font-size:.8rem;text-align:center;margin:2rem 0}
details summary{cursor:pointer;color:var(--muted)}`;

export function layout(title: string, body: string, header = ''): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<title>${escapeHtml(title)} · Octelium</title><style>${STYLE}</style></head><body>` +
    `<header class="top"><a class="brand" href="/portal"><span class="logo" aria-hidden="true"></span>Octelium</a>${header}</header>` +
    `<main id="main">${body}</main><footer>octelium-ts · zero-trust access</footer></body></html>`;
}

export interface LoginView { providers: Array<{ name: string; displayName: string; type: string }>; redirect?: string; error?: string; cli?: { port: number; challenge: string } }

export function loginPage(v: LoginView): string {
  const q = (name: string) => {
    const p = new URLSearchParams();
    if (v.redirect) p.set('redirect', v.redirect);
    if (v.cli) {
      p.set('cli', String(v.cli.port));
      p.set('cli_challenge', v.cli.challenge);
    }
    const s = p.toString();
    return `/login/${encodeURIComponent(name)}${s ? `?${s}` : ''}`;
  };
  const list = v.providers.length
    ? `<ul class="idps" aria-label="Identity providers">${v.providers.map((p) => `<li><a class="idp" href="${escapeHtml(q(p.name))}">Continue with ${escapeHtml(p.displayName)}<span class="badge">${escapeHtml(p.type)}</span></a></li>`).join('')}</ul>`
    : `<p class="err" role="alert">No identity provider is configured for this cluster. An admin can add one: <code>kind: IdentityProvider</code>.</p>`;
  return layout('Sign in', `<div class="narrow" style="margin:3rem auto"><section class="card" aria-labelledby="t">
<h1 id="t">Sign in</h1><p class="sub">Choose how to sign in to this cluster.</p>
${v.error ? `<p class="err" role="alert">${escapeHtml(v.error)}</p>` : ''}${list}
${v.cli ? '<p class="muted" style="margin-top:1rem">You are signing in the <code>octelium</code> command line tool.</p>' : ''}</section></div>`);
}

export function errorPage(title: string, message: string, opts: { retry?: string } = {}): string {
  return layout(title, `<div class="narrow" style="margin:3rem auto"><section class="card" aria-labelledby="t">
<h1 id="t">${escapeHtml(title)}</h1><p class="err" role="alert">${escapeHtml(message)}</p>
<p><a href="${escapeHtml(opts.retry ?? '/login')}">Back to sign in</a></p></section></div>`);
}

export function messagePage(title: string, message: string): string {
  return layout(title, `<div class="narrow" style="margin:3rem auto"><section class="card"><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p></section></div>`);
}

export interface PortalService { name: string; url: string; mcpURL?: string; mode: string; description?: string }
export interface PortalSession { name: string; type: string; createdAt: string; expiresAt?: string; via: string; current: boolean }

export function portalPage(v: { user: string; email?: string; displayName?: string; services: PortalService[]; sessions: PortalSession[]; csrf: string }): string {
  const logout = `<form method="post" action="/logout" style="margin:0"><input type="hidden" name="csrf" value="${escapeHtml(v.csrf)}"><button type="submit">Sign out</button></form>`;
  const header = `<div class="who"><span class="muted">${escapeHtml(v.email ?? v.user)}</span>${logout}</div>`;
  const services = v.services.length
    ? `<table><caption class="muted" style="text-align:left;margin-bottom:.4rem">Services your policies let you reach</caption><thead><tr><th scope="col">Service</th><th scope="col">Open</th><th scope="col">Connect an MCP client</th></tr></thead><tbody>${v.services.map((s) => `<tr>
<td><strong>${escapeHtml(s.name)}</strong> <span class="pill">${escapeHtml(s.mode)}</span>${s.description ? `<div class="muted">${escapeHtml(s.description)}</div>` : ''}</td>
<td><a href="${escapeHtml(s.url)}">${escapeHtml(s.url)}</a></td>
<td>${s.mcpURL ? `<label class="muted" for="mcp-${escapeHtml(s.name)}">MCP endpoint (copy into your client)</label><input class="url" id="mcp-${escapeHtml(s.name)}" readonly value="${escapeHtml(s.mcpURL)}">` : '<span class="muted">—</span>'}</td></tr>`).join('')}</tbody></table>`
    : '<p class="muted">No Service is available to you. Ask an admin for access.</p>';
  const sessions = `<table><thead><tr><th scope="col">Session</th><th scope="col">Type</th><th scope="col">Started</th><th scope="col">Expires</th><th scope="col"><span class="muted">Action</span></th></tr></thead><tbody>${v.sessions.map((s) => `<tr>
<td><code>${escapeHtml(s.name)}</code>${s.current ? ' <span class="pill current">this browser</span>' : ''}<div class="muted">${escapeHtml(s.via)}</div></td><td>${escapeHtml(s.type)}</td>
<td>${escapeHtml(s.createdAt)}</td><td>${escapeHtml(s.expiresAt ?? 'never')}</td>
<td><form method="post" action="/portal/sessions/${encodeURIComponent(s.name)}/revoke"><input type="hidden" name="csrf" value="${escapeHtml(v.csrf)}"><button class="danger" type="submit" aria-label="Revoke session ${escapeHtml(s.name)}">Revoke</button></form></td></tr>`).join('')}</tbody></table>`;
  return layout('Portal', `<section class="card" aria-labelledby="t"><h1 id="t">Welcome, ${escapeHtml(v.displayName ?? v.user)}</h1>
<p class="sub">Signed in as <strong>${escapeHtml(v.user)}</strong>${v.email ? ` (${escapeHtml(v.email)})` : ''}.</p>
<h2>Services</h2>${services}
<details style="margin-top:1rem"><summary>How to connect an MCP client</summary><p>Paste the MCP endpoint into your client (Claude Desktop, MCP Inspector, the MCP SDK). It discovers this cluster's authorization server and sends you through this sign-in page; your policies apply to everything it does.</p></details>
<h2>Your sessions</h2>${sessions}</section>`, header);
}
