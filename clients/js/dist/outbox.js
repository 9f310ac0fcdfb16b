export class Outbox {
    storage;
    items = new Map();
    constructor(storage) {
        this.storage = storage;
    }
    async restore() {
        for (const item of (await this.storage?.load()) ?? [])
            this.items.set(item.clientMsgId, item);
        return this.pending();
    }
    add(item) {
        this.items.set(item.clientMsgId, item);
        void this.storage?.save(this.pending());
    }
    remove(clientMsgId) {
        const item = this.items.get(clientMsgId);
        if (item && this.items.delete(clientMsgId))
            void this.storage?.save(this.pending());
        return item;
    }
    has(clientMsgId) {
        return this.items.has(clientMsgId);
    }
    pending() {
        return [...this.items.values()];
    }
}
export function newClientMsgId() {
    const bytes = new Uint8Array(12);
    globalThis.crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
