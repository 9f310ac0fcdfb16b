/** Capped exponential backoff with full jitter: a crowd cut off by one deploy spreads out. */
export declare function fullJitter(attempt: number, base?: number, cap?: number, random?: () => number): number;
/** What a client does after a close, from the server's close table (docs/protocol.md). */
export type CloseAction = "reconnect" | "refresh" | "stop";
export declare function closeAction(code: number, reason: string): CloseAction;
