/** Sends not yet acknowledged, keyed by client_msg_id, in send order. Persist them with a
 * `Storage` (localStorage, AsyncStorage, a file) so a reload does not lose them either. */
export interface PendingSend {
  room: string;
  body: string;
  clientMsgId: string;
}

export interface OutboxStorage {
  load(): PendingSend[] | Promise<PendingSend[]>;
  save(items: PendingSend[]): void | Promise<void>;
}

export class Outbox {
  private items = new Map<string, PendingSend>();
  constructor(private storage?: OutboxStorage) {}

  async restore(): Promise<PendingSend[]> {
    for (const item of (await this.storage?.load()) ?? []) this.items.set(item.clientMsgId, item);
    return this.pending();
  }

  add(item: PendingSend): void {
    this.items.set(item.clientMsgId, item);
    void this.storage?.save(this.pending());
  }

  remove(clientMsgId: string): PendingSend | undefined {
    const item = this.items.get(clientMsgId);
    if (item && this.items.delete(clientMsgId)) void this.storage?.save(this.pending());
    return item;
  }

  has(clientMsgId: string): boolean {
    return this.items.has(clientMsgId);
  }

  pending(): PendingSend[] {
    return [...this.items.values()];
  }
}

export function newClientMsgId(): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
