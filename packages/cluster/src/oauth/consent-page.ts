/** The consent/login page of the built-in authorization server: plain HTML, no script, every value escaped. */

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const STYLE = `body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1f2328}
h1{font-size:1.3rem}h2{font-size:1.05rem;margin-top:1.6rem}dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}dt{font-weight:600}
dd{margin:0;word-break:break-all}.warn{background:#fff8c5;padding:.6rem;border-radius:6px}.err{background:#ffebe9;padding:.6rem;border-radius:6px}
.who{background:#eef6ff;padding:.6rem;border-radius:6px}ul.idps{list-style:none;padding:0;display:grid;gap:.5rem}
a.idp{display:block;padding:.6rem .8rem;border:1px solid #d0d7de;border-radius:8px;text-decoration:none;color:#1f2328;font-weight:600}
a.idp:focus-visible,button:focus-visible{outline:3px solid #91a7ff}details{margin-top:1.2rem}summary{cursor:pointer;color:#57606a}
input[type=password]{width:100%;padding:.4rem;margin:.3rem 0 1rem}button{padding:.5rem 1.2rem;margin-right:.5rem}`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">` +
    `<title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`;
}

export interface ConsentView {
  requestId: string;
  csrf: string;
  clientName: string;
  clientId: string;
  /** Where the browser will be sent with the code: shown so that a look-alike client name cannot hide it. */
  redirectTarget: string;
  /** How the client registered: self-registered (DCR) and URL (CIMD) clients get a warning line. */
  clientKind: 'dcr' | 'cimd';
  resource?: string;
  resourceName?: string;
  scope?: string;
  error?: string;
  /** The person this browser is signed in as (the `octelium_auth` cookie): they consent for themselves. */
  signedIn?: { user: string; email?: string; via?: string; session: string };
  /** The IdentityProviders a person can sign in with; each link comes back to this request after /callback. */
  providers?: Array<{ displayName: string; type: string; href: string }>;
}

function hiddenFields(v: ConsentView): string {
  return `<input type="hidden" name="request_id" value="${escapeHtml(v.requestId)}">
<input type="hidden" name="csrf" value="${escapeHtml(v.csrf)}">`;
}

/** Allow/Deny for the signed-in person; the Session name is sent back so a cookie swapped meanwhile is noticed. */
function signedInForm(v: ConsentView, who: NonNullable<ConsentView['signedIn']>): string {
  return `<p class="who">Signed in as <strong>${escapeHtml(who.user)}</strong>${who.email ? ` (${escapeHtml(who.email)})` : ''}${who.via ? ` through ${escapeHtml(who.via)}` : ''}.</p>
<form method="post" action="/oauth2/authorize">${hiddenFields(v)}
<input type="hidden" name="session" value="${escapeHtml(who.session)}">
<button type="submit" name="action" value="allow">Allow</button><button type="submit" name="action" value="deny">Deny</button>
</form>`;
}

function tokenForm(v: ConsentView): string {
  return `<form method="post" action="/oauth2/authorize">${hiddenFields(v)}
<label for="auth_token">Your auth token (<code>octeliumctl create cred … --type auth-token</code>)</label>
<input type="password" id="auth_token" name="auth_token" autocomplete="off">
<button type="submit" name="action" value="allow">Allow</button><button type="submit" name="action" value="deny">Deny</button>
</form>`;
}

function providerList(v: ConsentView): string {
  return `<ul class="idps" aria-label="Identity providers">${(v.providers ?? []).map((p) => `<li><a class="idp" href="${escapeHtml(p.href)}">Continue with ${escapeHtml(p.displayName)}</a></li>`).join('')}</ul>`;
}

/**
 * Three situations: signed in through an IdP (Allow/Deny as that person); not signed in with IdPs configured
 * (their links first, the auth-token form folded away for workloads and accounts without an IdP); no IdP at all
 * (the auth-token form, as before IdPs existed).
 */
export function consentPage(v: ConsentView): string {
  const rows = [
    ['Application', v.clientName],
    ['Client ID', v.clientId],
    ['Redirects to', v.redirectTarget],
    ...(v.resource ? [['Access to', v.resourceName ? `${v.resourceName} (${v.resource})` : v.resource]] : [['Access to', 'every Service your policies allow']]),
    ['Scopes', v.scope || '(none)'],
  ].map(([k, val]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(val)}</dd>`).join('');
  const warn = v.clientKind === 'dcr'
    ? 'This application registered itself with this cluster. Continue only if you just started signing in to it.'
    : 'This application is identified by its URL. Continue only if you trust that site.';
  const providers = v.providers ?? [];
  let login: string;
  if (v.signedIn) {
    login = signedInForm(v, v.signedIn) + (providers.length ? `<details><summary>Not you? Sign in with another account</summary>${providerList(v)}</details>` : '');
  } else if (providers.length) {
    login = `<h2>Sign in to continue</h2>${providerList(v)}
<form method="post" action="/oauth2/authorize">${hiddenFields(v)}<button type="submit" name="action" value="deny">Deny</button></form>
<details><summary>Use an auth token instead (workloads, accounts without an identity provider)</summary>${tokenForm(v)}</details>`;
  } else {
    login = tokenForm(v);
  }
  return page('Authorize application', `<h1>Authorize an application</h1>
<p>An application wants to act on your behalf.</p><dl>${rows}</dl><p class="warn">${escapeHtml(warn)}</p>
${v.error ? `<p class="err" role="alert">${escapeHtml(v.error)}</p>` : ''}${login}`);
}

export function errorPage(title: string, message: string): string {
  return page(title, `<h1>${escapeHtml(title)}</h1><p class="err">${escapeHtml(message)}</p>`);
}
