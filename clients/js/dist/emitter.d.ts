/** A tiny typed event emitter (no dependency, works in browsers, React Native and Node). */
export declare class Emitter<Events extends Record<string, unknown>> {
    private handlers;
    on<K extends keyof Events>(event: K, handler: (payload: Events[K]) => void): () => void;
    protected emit<K extends keyof Events>(event: K, payload: Events[K]): void;
}
