/**
 * Server-sent events over fetch(): an incremental parser (spec field rules, any line ending, input
 * split anywhere) and a reconnecting reader. fetch() rather than EventSource so a 401 is seen as
 * a 401 (EventSource only reports "error") and the stream can be closed with an AbortSignal.
 */

export interface SseEvent {
  event: string;
  data: string;
  id: string | null;
}

export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private eventType = '';
  private lastId: string | null = null;
  private sawCr = false;
  /** Reconnection delay the server asked for (`retry:`), in ms. */
  retry: number | null = null;

  /** Feed decoded text; returns the events completed by it. */
  push(chunk: string): SseEvent[] {
    const out: SseEvent[] = [];
    let text = chunk;
    // A "\r\n" split across chunks: the "\n" belongs to the line already ended by "\r".
    if (this.sawCr && text.startsWith('\n')) text = text.slice(1);
    this.sawCr = false;
    this.buffer += text;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (m === null) break;
      if (m[0] === '\r' && m.index === this.buffer.length - 1) {
        // Might be the first half of "\r\n": end the line now, drop a following "\n" later.
        this.sawCr = true;
      }
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      const ev = this.line(line);
      if (ev !== null) out.push(ev);
    }
    return out;
  }

  /** End of stream: a final event without its blank line is discarded, as the spec says. */
  end(): void {
    this.buffer = '';
    this.data = [];
    this.eventType = '';
  }

  private line(line: string): SseEvent | null {
    if (line === '') {
      if (this.data.length === 0) {
        this.eventType = '';
        return null;
      }
      const ev = { event: this.eventType || 'message', data: this.data.join('\n'), id: this.lastId };
      this.data = [];
      this.eventType = '';
      return ev;
    }
    if (line.startsWith(':')) return null; // comment / keep-alive
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.eventType = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break; // unknown fields are ignored
    }
    return null;
  }
}

export interface StreamHandlers {
  onEvent(ev: SseEvent): void;
  /** Connection state for the UI: live, reconnecting (with the reason), or stopped for good. */
  onState?(state: 'open' | 'reconnecting' | 'unauthorized' | 'closed', detail?: string): void;
}

export interface StreamOptions {
  signal: AbortSignal;
  reconnectMs?: number;
  fetchImpl?: typeof fetch;
}

/**
 * Reads `url` as SSE until `signal` aborts, reconnecting after errors and after the server ends
 * the stream (the agent may restart). Stops on 401 (the session is gone: the UI must log in).
 */
export async function streamSse(url: string, handlers: StreamHandlers, opts: StreamOptions): Promise<void> {
  const doFetch = opts.fetchImpl ?? fetch;
  let delay = opts.reconnectMs ?? 3000;
  while (!opts.signal.aborted) {
    const parser = new SseParser();
    let detail = 'stream ended';
    try {
      const resp = await doFetch(url, {
        headers: { accept: 'text/event-stream' },
        credentials: 'same-origin',
        cache: 'no-store',
        signal: opts.signal,
      });
      if (resp.status === 401) {
        handlers.onState?.('unauthorized');
        return;
      }
      if (!resp.ok || resp.body === null) {
        detail = `HTTP ${resp.status}`;
      } else {
        handlers.onState?.('open');
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const ev of parser.push(value)) handlers.onEvent(ev);
        }
        parser.end();
      }
    } catch (err) {
      if (opts.signal.aborted) break;
      detail = err instanceof Error ? err.message : String(err);
    }
    if (opts.signal.aborted) break;
    if (parser.retry !== null) delay = parser.retry;
    handlers.onState?.('reconnecting', detail);
    await sleep(delay, opts.signal);
  }
  handlers.onState?.('closed');
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
