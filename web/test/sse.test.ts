import { describe, expect, it } from 'vitest';
import { SseParser, streamSse, type SseEvent } from '../src/sse';

function feedAll(chunks: string[]): SseEvent[] {
  const p = new SseParser();
  return chunks.flatMap((c) => p.push(c));
}

describe('SseParser', () => {
  it('reads upstream frames (data only, blank line between)', () => {
    expect(feedAll(['data: [{"name":"radarr"}]\n\ndata: []\n\n'])).toEqual([
      { event: 'message', data: '[{"name":"radarr"}]', id: null },
      { event: 'message', data: '[]', id: null },
    ]);
  });

  it('gives the same events however the input is split', () => {
    const text = 'event: log\r\nid: 7\r\ndata: line one\r\ndata:line two\r\n\r\n: keep-alive\r\n\r\ndata: x\r\n\r\n';
    const whole = feedAll([text]);
    expect(whole).toEqual([
      { event: 'log', data: 'line one\nline two', id: '7' },
      { event: 'message', data: 'x', id: '7' },
    ]);
    for (let i = 1; i < text.length; i += 1) {
      expect(feedAll([text.slice(0, i), text.slice(i)])).toEqual(whole);
    }
    expect(feedAll(text.split(''))).toEqual(whole);
  });

  it('ignores comments and unknown fields, reads retry, keeps one leading space only', () => {
    const p = new SseParser();
    expect(p.push(': ping\nfoo: bar\nretry: 1500\ndata:  two spaces\n\n')).toEqual([
      { event: 'message', data: ' two spaces', id: null },
    ]);
    expect(p.retry).toBe(1500);
  });

  it('drops an event cut off by the end of the stream', () => {
    const p = new SseParser();
    expect(p.push('data: partial\n')).toEqual([]);
    p.end();
    expect(p.push('\n')).toEqual([]);
  });

  it('accepts lone CR line endings', () => {
    expect(feedAll(['data: a\r\r', 'data: b\r', '\r'])).toEqual([
      { event: 'message', data: 'a', id: null },
      { event: 'message', data: 'b', id: null },
    ]);
  });
});

describe('streamSse', () => {
  function sseResponse(chunks: string[], status = 200): Response {
    const enc = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (const ch of chunks) c.enqueue(enc.encode(ch));
        c.close();
      },
    });
    return new Response(body, { status, headers: { 'content-type': 'text/event-stream' } });
  }

  it('reconnects after the stream ends and stops when aborted', async () => {
    const ctrl = new AbortController();
    const got: string[] = [];
    const states: string[] = [];
    let calls = 0;
    const fetchImpl = (async () => {
      calls += 1;
      if (calls === 2) throw new Error('connection refused');
      return sseResponse([`data: frame ${calls}\n\n`]);
    }) as typeof fetch;
    await streamSse(
      '/api/apps/events',
      {
        onEvent: (ev) => {
          got.push(ev.data);
          if (got.length === 2) ctrl.abort();
        },
        onState: (s, d) => states.push(d ? `${s}:${d}` : s),
      },
      { signal: ctrl.signal, reconnectMs: 1, fetchImpl },
    );
    expect(got).toEqual(['frame 1', 'frame 3']);
    expect(states).toContain('reconnecting:connection refused');
    expect(states[states.length - 1]).toBe('closed');
  });

  it('stops on 401 so the shell can send the user to the login page', async () => {
    const ctrl = new AbortController();
    const states: string[] = [];
    let calls = 0;
    const fetchImpl = (async () => {
      calls += 1;
      return new Response('{"error":"Not authenticated"}', { status: 401 });
    }) as typeof fetch;
    await streamSse('/x', { onEvent: () => undefined, onState: (s) => states.push(s) }, { signal: ctrl.signal, reconnectMs: 1, fetchImpl });
    expect(calls).toBe(1);
    expect(states).toEqual(['unauthorized']);
  });
});
