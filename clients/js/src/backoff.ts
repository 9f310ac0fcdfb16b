/** Capped exponential backoff with full jitter: a crowd cut off by one deploy spreads out. */
export function fullJitter(attempt: number, base = 500, cap = 15000, random = Math.random): number {
  return random() * Math.min(cap, base * 2 ** Math.min(attempt, 30));
}

/** What a client does after a close, from the server's close table (docs/protocol.md). */
export type CloseAction = "reconnect" | "refresh" | "stop";

const TERMINAL = new Set([
  "invalid_token", "revoked", "origin_not_allowed", "auth_timeout", "too_many_sockets", "removed",
]);

export function closeAction(code: number, reason: string): CloseAction {
  if (code === 1008 && reason === "expired_token") return "refresh";
  if (code === 1008 || TERMINAL.has(reason)) return "stop";
  if (code === 1000 && reason === "idle") return "reconnect";
  return "reconnect";
}
