/** A tiny typed event emitter (no dependency, works in browsers, React Native and Node). */
export class Emitter {
    handlers = new Map();
    on(event, handler) {
        let set = this.handlers.get(event);
        if (!set)
            this.handlers.set(event, (set = new Set()));
        set.add(handler);
        return () => set.delete(handler);
    }
    emit(event, payload) {
        for (const handler of this.handlers.get(event) ?? []) {
            handler(payload);
        }
    }
}
