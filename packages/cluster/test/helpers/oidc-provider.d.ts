// oidc-provider ships no types and @types/oidc-provider lags v9; the tests use a handful of its members.
declare module 'oidc-provider' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const Provider: new (issuer: string, config: Record<string, unknown>) => { callback(): (req: any, res: any) => void; Grant: any };
  export default Provider;
}
