import { createRequire } from 'node:module';
import { BackchannelError } from '../protocol/index.js';
import type { Platform, WebSocketConstructor } from '../transport/platform.js';

/**
 * A WebSocket class as Node libraries ship it: the `ws` package's default export (its handlers
 * take richer events than the SDK reads, which is why it does not type-check as a
 * {@link WebSocketConstructor} itself).
 */
export type NodeWebSocketClass = new (url: string, protocols?: string | string[]) => object;

/**
 * The platform pieces for Node: `platform: nodePlatform()` in `convene`, `join` and `reopen`.
 * Uses the WebSocket class given, else the `ws` package (an optional peer dependency of the
 * SDK), else Node's global `WebSocket` (Node ≥ 22). Throws `bad_argument` when there is none.
 */
export function nodePlatform(WebSocket?: NodeWebSocketClass): Partial<Platform> {
  if (WebSocket !== undefined) return { WebSocket: WebSocket as unknown as WebSocketConstructor };
  try {
    const ws = createRequire(import.meta.url)('ws') as NodeWebSocketClass | { WebSocket: NodeWebSocketClass };
    return { WebSocket: (typeof ws === 'function' ? ws : ws.WebSocket) as unknown as WebSocketConstructor };
  } catch (cause) {
    const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (global !== undefined) return { WebSocket: global };
    throw new BackchannelError('bad_argument', 'no WebSocket in this Node: install the `ws` package (npm install ws), or pass a WebSocket class to nodePlatform()', { cause });
  }
}
