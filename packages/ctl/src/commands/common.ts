import type { Command } from 'commander';
import { authenticatedClient, type ApiClient } from '@octelium-ts/shared';

/** Global options every command inherits (octelium-model.md §1). */
export interface GlobalOptions { domain?: string; context?: string }

export function clientFor(cmd: Command): Promise<ApiClient> {
  const g = cmd.optsWithGlobals() as GlobalOptions;
  return authenticatedClient({ domain: g.domain, context: g.context });
}
