import { createRequire } from 'node:module';
import type { MaskFunction } from '@octelium-ts/shared';

/**
 * bufferutil's native WebSocket mask (a dependency of this package; ws loads the same module for its own frames),
 * for the tunnel's one-pass DATA framing (WebSocketTransportOptions.mask). Undefined when it cannot be loaded: the
 * transport then lets ws frame and mask as before.
 */
export function nativeMask(): MaskFunction | undefined {
  try {
    const mod = createRequire(import.meta.url)('bufferutil') as { mask?: MaskFunction };
    return typeof mod.mask === 'function' ? mod.mask : undefined;
  } catch {
    return undefined;
  }
}
