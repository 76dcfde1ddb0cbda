/** The consent/login page of the built-in authorization server: plain HTML, no script, every value escaped. */

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const STYLE = `body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1f2328}
h1{font-size:1.3rem}dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}dt{font-weight:600}
dd{margin:0;word-break:break-all}.warn{background:#fff8c5;padding:.6rem;border-radius:6px}.err{background:#ffebe9;padding:.6rem;border-radius:6px}
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
}

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
  return page('Authorize application', `<h1>Authorize an application</h1>
<p>An application wants to act on your behalf.</p><dl>${rows}</dl><p class="warn">${escapeHtml(warn)}</p>
${v.error ? `<p class="err">${escapeHtml(v.error)}</p>` : ''}
<form method="post" action="/oauth2/authorize">
<input type="hidden" name="request_id" value="${escapeHtml(v.requestId)}">
<input type="hidden" name="csrf" value="${escapeHtml(v.csrf)}">
<label for="auth_token">Your auth token (<code>octeliumctl create cred … --type auth-token</code>)</label>
<input type="password" id="auth_token" name="auth_token" autocomplete="off">
<button type="submit" name="action" value="allow">Allow</button><button type="submit" name="action" value="deny">Deny</button>
</form>`);
}

export function errorPage(title: string, message: string): string {
  return page(title, `<h1>${escapeHtml(title)}</h1><p class="err">${escapeHtml(message)}</p>`);
}
