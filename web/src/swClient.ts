/** The shell's side of the service worker: registration and acknowledged messages. */
import type { Ack, InterceptConfig, ShellMessage } from './sw/messages';

const SW_URL = '/service-worker.js';

export function swSupported(): boolean {
  return 'serviceWorker' in navigator && window.isSecureContext !== false;
}

let registration: Promise<ServiceWorkerRegistration | null> = Promise.resolve(null);

export function registerServiceWorker(): Promise<ServiceWorkerRegistration | null> {
  if (!swSupported()) {
    console.warn('[bloud] service workers unavailable (needs http://localhost, https, or a trusted origin); embedded apps rely on server-side rewriting only');
    return registration;
  }
  registration = navigator.serviceWorker.register(SW_URL, { scope: '/' }).catch((err: unknown) => {
    console.warn('[bloud] service worker registration failed:', err);
    return null;
  });
  return registration;
}

/**
 * Resolves once a worker controls this page (or after `timeoutMs`, so a broken worker never
 * keeps an app from opening: the proxy's rewriting still applies). Returns whether one does.
 */
export async function waitForController(timeoutMs = 4000): Promise<boolean> {
  if (!swSupported()) return false;
  if (navigator.serviceWorker.controller) return true;
  // No worker is coming (registration failed): don't make every app wait for the timeout.
  if ((await registration) === null) return false;
  if (navigator.serviceWorker.controller) return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      navigator.serviceWorker.removeEventListener('controllerchange', onChange);
      resolve(navigator.serviceWorker.controller !== null);
    }, timeoutMs);
    function onChange() {
      clearTimeout(timer);
      resolve(true);
    }
    navigator.serviceWorker.addEventListener('controllerchange', onChange, { once: true });
  });
}

async function send(msg: ShellMessage, timeoutMs = 1000): Promise<Ack | null> {
  if (!swSupported()) return null;
  const reg = await navigator.serviceWorker.getRegistration('/');
  const worker = navigator.serviceWorker.controller ?? reg?.active ?? null;
  if (worker === null) return null;
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => {
      channel.port1.close();
      console.warn(`[bloud] service worker did not acknowledge ${msg.type} within ${timeoutMs} ms`);
      resolve(null);
    }, timeoutMs);
    channel.port1.onmessage = (ev: MessageEvent<Ack>) => {
      clearTimeout(timer);
      channel.port1.close();
      resolve(ev.data);
    };
    worker.postMessage(msg, [channel.port2]);
  });
}

export function setActiveApp(appName: string | null, needsRewrite?: boolean): Promise<Ack | null> {
  return send({ type: 'SET_ACTIVE_APP', appName, needsRewrite });
}

export function setIntercepts(appName: string, config: InterceptConfig | null): Promise<Ack | null> {
  return send({ type: 'SET_INTERCEPTS', appName, config });
}
