/** Capped exponential backoff with full jitter: a crowd cut off by one deploy spreads out. */
export function fullJitter(attempt, base = 500, cap = 15000, random = Math.random) {
    return random() * Math.min(cap, base * 2 ** Math.min(attempt, 30));
}
export function closeAction(code, reason) {
    if (code === 1008)
        return reason === "expired_token" ? "refresh" : "stop";
    if (code === 1000)
        return "stop"; // a normal close (or `idle`): reconnect when there is work
    return "reconnect"; // 1001, 1006, 1011, 1012, 1013 and anything unknown
}
