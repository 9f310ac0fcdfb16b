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
export declare class Outbox {
    private storage?;
    private items;
    constructor(storage?: OutboxStorage | undefined);
    restore(): Promise<PendingSend[]>;
    add(item: PendingSend): void;
    remove(clientMsgId: string): PendingSend | undefined;
    has(clientMsgId: string): boolean;
    pending(): PendingSend[];
}
export declare function newClientMsgId(): string;
