/** Child side of the bench IPC: `{id, type, ...}` requests answered with `{id, ok, result | error}`. */
type Handler = (msg: Record<string, unknown>) => unknown | Promise<unknown>;

export function serveIpc(handlers: Record<string, Handler>): void {
  process.on('message', async (m: { id?: number; type?: string } & Record<string, unknown>) => {
    const h = m.type ? handlers[m.type] : undefined;
    try {
      if (!h) throw new Error(`unknown request ${m.type}`);
      const result = await h(m);
      process.send?.({ id: m.id, ok: true, result });
    } catch (err) {
      process.send?.({ id: m.id, ok: false, error: (err as Error).stack ?? String(err) });
    }
  });
  // The parent going away (or closing the channel) ends the child.
  process.on('disconnect', () => process.exit(0));
}

export function sendReady(extra: Record<string, unknown> = {}): void {
  process.send?.({ type: 'ready', ...extra });
}
