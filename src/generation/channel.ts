/**
 * A single-consumer async queue: the scheduler pushes events synchronously
 * between model steps; a consumer (CLI, provider, HTTP response) reads them
 * with `for await`. Unbounded, because a sequence produces at most one event
 * per step and the consumer runs between steps.
 */
export class Channel<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter: ((r: IteratorResult<T>) => void) | null = null;
  private failer: ((e: unknown) => void) | null = null;
  private closed = false;
  private error: unknown = null;

  push(item: T): void {
    if (this.closed) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = this.failer = null;
      w({ value: item, done: false });
    } else this.items.push(item);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = this.failer = null;
      w({ value: undefined as never, done: true });
    }
  }

  fail(e: unknown): void {
    if (this.closed) return;
    this.error = e;
    this.closed = true;
    if (this.failer) {
      const f = this.failer;
      this.waiter = this.failer = null;
      f(e);
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
    if (this.closed) return this.error !== null ? Promise.reject(this.error) : Promise.resolve({ value: undefined as never, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failer = reject;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return { next: () => this.next() };
  }
}
