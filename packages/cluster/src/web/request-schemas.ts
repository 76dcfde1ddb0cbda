import { z } from 'zod';

/**
 * One schema per human-login endpoint (the pattern of oauth/request-schemas.ts): values arrive as strings, a
 * repeated parameter arrives as an array and fails, unknown parameters are ignored, every value is bounded.
 */
const param = z.string().max(4096);

export const LoginQuery = z.object({
  redirect: param.optional(),
  /** `octelium login` without a token: `<port>` of its loopback listener. */
  cli: z.string().regex(/^\d{4,5}$/, 'a port number').transform(Number).pipe(z.number().int().min(1024).max(65535)).optional(),
  /** base64url(SHA-256(verifier)) the CLI proves at /login/token. */
  cli_challenge: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'an S256 challenge').optional(),
});

export const CallbackParams = z.object({
  state: param.optional(),
  RelayState: param.optional(),
  code: param.optional(),
  error: param.optional(),
  error_description: param.optional(),
  iss: param.optional(),
  SAMLResponse: z.string().max(512 * 1024).optional(),
});

export const CsrfForm = z.object({ csrf: param.optional() });

export const CliTokenForm = z.object({ code: param.optional(), code_verifier: z.string().regex(/^[A-Za-z0-9._~-]{43,128}$/, 'a PKCE verifier').optional() });
