/**
 * `/trust`: HTTPS on the box. Download the box-local CA, compare its fingerprint, per-platform
 * steps to trust it, a check that HTTPS works from this browser, and (admins, over HTTPS) the
 * HTTP-to-HTTPS redirect switch. Public: a new device reads it before anyone signs in on it.
 */
import { clear, h } from '../dom';
import { errorBox, loading, messageOf, type Ctx, type View } from './common';

export interface TlsStatus {
  enabled: boolean;
  https: boolean;
  httpsPort?: number;
  redirect?: boolean;
  ca?: { name: string; fingerprintSha256: string; notAfter: number } | null;
  certificate?: { notAfter: number; names: string[]; addresses: string[] } | null;
}

export type Platform = 'windows' | 'macos' | 'ios' | 'android' | 'linux' | 'firefox';

export const PLATFORM_LABELS: Record<Platform, string> = {
  windows: 'Windows',
  macos: 'macOS',
  ios: 'iPhone and iPad',
  android: 'Android',
  linux: 'Linux',
  firefox: 'Firefox (any system)',
};

/** Steps per platform; `ca.crt` is PEM, `ca.der` DER. */
export const TRUST_STEPS: Record<Platform, { file: 'ca.crt' | 'ca.der'; steps: string[] }> = {
  windows: {
    file: 'ca.der',
    steps: [
      'Download the certificate and open it.',
      'Choose "Install Certificate…", then "Current User" (or "Local Machine" for every account).',
      'Choose "Place all certificates in the following store", then "Trusted Root Certification Authorities", and finish.',
      'Restart the browser. Edge and Chrome use this store.',
    ],
  },
  macos: {
    file: 'ca.crt',
    steps: [
      'Download the certificate and open it: Keychain Access adds it to the "login" keychain.',
      'Double-click "Bloud local CA …", open "Trust" and set "When using this certificate" to "Always Trust".',
      'Close the window and confirm with your password. Safari and Chrome use the keychain.',
    ],
  },
  ios: {
    file: 'ca.crt',
    steps: [
      'Open this page in Safari and download the certificate; allow the configuration profile.',
      'Settings → General → VPN & Device Management: install the "Bloud local CA" profile.',
      'Settings → General → About → Certificate Trust Settings: turn on full trust for "Bloud local CA …".',
    ],
  },
  android: {
    file: 'ca.der',
    steps: [
      'Download the certificate.',
      'Settings → Security → More security settings → Encryption & credentials → Install a certificate → CA certificate (names differ by maker).',
      'Pick the downloaded file. Chrome trusts it; some apps only trust system certificates.',
    ],
  },
  linux: {
    file: 'ca.crt',
    steps: [
      'Download the certificate.',
      'Debian/Ubuntu: sudo cp bloud-local-ca.crt /usr/local/share/ca-certificates/ && sudo update-ca-certificates. Fedora: copy it to /etc/pki/ca-trust/source/anchors/ and run sudo update-ca-trust. NixOS: security.pki.certificateFiles.',
      'Chrome and Chromium on Linux read their own store: Settings → Privacy and security → Security → Manage certificates → Authorities → Import, and tick "Trust this certificate for identifying websites".',
    ],
  },
  firefox: {
    file: 'ca.crt',
    steps: [
      'Download the certificate.',
      'Settings → Privacy & Security → Certificates → View Certificates → Authorities → Import.',
      'Tick "Trust this CA to identify websites".',
    ],
  },
};

/** The platform to open first, from the user agent. */
export function detectPlatform(userAgent: string): Platform {
  const ua = userAgent.toLowerCase();
  if (ua.includes('firefox')) return 'firefox';
  if (ua.includes('iphone') || ua.includes('ipad')) return 'ios';
  if (ua.includes('android')) return 'android';
  if (ua.includes('windows')) return 'windows';
  if (ua.includes('mac os')) return 'macos';
  return 'linux';
}

/** This page's address over HTTPS on the box's HTTPS port (no port for 443). */
export function httpsUrl(loc: { hostname: string; pathname: string }, port: number): string {
  const host = loc.hostname.includes(':') ? `[${loc.hostname}]` : loc.hostname;
  return `https://${host}${port === 443 ? '' : `:${port}`}${loc.pathname}`;
}

async function fetchStatus(): Promise<TlsStatus> {
  const r = await fetch('/api/tls/status', { credentials: 'same-origin', headers: { accept: 'application/json' } });
  if (!r.ok) throw new Error(`HTTPS status: ${r.status}`);
  return (await r.json()) as TlsStatus;
}

/**
 * Whether this browser completes a TLS handshake with the box (it trusts the CA). An opaque
 * `no-cors` answer is enough: a certificate error rejects the fetch.
 */
async function httpsWorks(port: number): Promise<boolean> {
  try {
    await fetch(httpsUrl({ hostname: location.hostname, pathname: '/api/tls/status' }, port), { mode: 'no-cors', cache: 'no-store' });
    return true;
  } catch {
    return false;
  }
}

async function setRedirect(on: boolean): Promise<void> {
  const r = await fetch('/api/tls/redirect', {
    method: 'PUT',
    credentials: 'same-origin',
    headers: { accept: 'application/json', 'content-type': 'application/json' },
    body: JSON.stringify({ enabled: on }),
  });
  if (!r.ok) {
    const body = (await r.json().catch(() => null)) as { error?: string } | null;
    throw new Error(body?.error ?? `request failed (${r.status})`);
  }
}

export function trustView(ctx: Ctx): View {
  const body = h('div', {}, loading());
  const el = h('section', { class: 'trust' }, h('h1', {}, 'HTTPS on this box'), body);
  void fetchStatus()
    .then((st) => render(ctx, body, st))
    .catch((err) => {
      clear(body);
      body.append(errorBox(messageOf(err)));
    });
  return { el, title: 'HTTPS' };
}

function render(ctx: Ctx, body: HTMLElement, st: TlsStatus): void {
  clear(body);
  if (!st.enabled || !st.ca) {
    body.append(h('p', {}, 'HTTPS is off on this box: the agent setting tls.enabled turns on its certificate authority.'));
    return;
  }
  const port = st.httpsPort ?? 443;
  const ca = st.ca;
  body.append(
    h('p', {}, 'Your box has its own certificate authority (CA). Trust it once on each device, and the browser opens the box over HTTPS without warnings. It can only vouch for names on your network (.local, the box\'s name, private addresses).'),
    h(
      'p',
      {},
      h('a', { href: '/api/tls/ca.crt', download: 'bloud-local-ca.crt', class: 'button primary' }, 'Download the CA (PEM, .crt)'),
      ' ',
      h('a', { href: '/api/tls/ca.der', download: 'bloud-local-ca.cer', class: 'button' }, 'DER (.cer)'),
    ),
    h('p', {}, `${ca.name}. Before you trust it, check that the SHA-256 fingerprint your device shows is:`),
    h('p', {}, h('code', { class: 'fingerprint', 'data-testid': 'ca-fingerprint' }, ca.fingerprintSha256)),
  );
  const first = detectPlatform(navigator.userAgent);
  const order = [first, ...(Object.keys(TRUST_STEPS) as Platform[]).filter((p) => p !== first)];
  for (const p of order) {
    const t = TRUST_STEPS[p];
    body.append(
      h(
        'details',
        { open: p === first ? '' : null },
        h('summary', {}, PLATFORM_LABELS[p]),
        h('p', {}, h('a', { href: `/api/tls/${t.file}`, download: t.file === 'ca.der' ? 'bloud-local-ca.cer' : 'bloud-local-ca.crt' }, `Download ${t.file === 'ca.der' ? 'bloud-local-ca.cer' : 'bloud-local-ca.crt'}`)),
        h('ol', {}, ...t.steps.map((s) => h('li', {}, s))),
      ),
    );
  }
  const check = h('p', { 'aria-live': 'polite' });
  body.append(h('h2', {}, 'Check'), check);
  if (st.https) {
    check.textContent = 'This page came over HTTPS: your browser trusts the box.';
  } else {
    check.textContent = 'Checking HTTPS from this browser…';
    void httpsWorks(port).then((ok) => {
      clear(check);
      if (ok) {
        check.append('HTTPS works from this browser. ', h('a', { href: httpsUrl(location, port) }, 'Open this page over HTTPS'), ' to switch the redirect on.');
      } else {
        check.append('HTTPS does not work from this browser yet: trust the CA as above, restart the browser, then reload this page.');
      }
    });
  }
  if (ctx.user !== null && ctx.user.role !== 'member') {
    const err = h('div', { 'aria-live': 'assertive' });
    const box = h('input', { type: 'checkbox', id: 'tls-redirect' }) as HTMLInputElement;
    box.checked = st.redirect === true;
    // Turning it on from plain HTTP could lock out every browser that does not trust the CA yet.
    box.disabled = !st.https && !box.checked;
    box.addEventListener('change', () => {
      clear(err);
      const want = box.checked;
      box.disabled = true;
      void setRedirect(want)
        .then(() => ctx.announce(want ? 'HTTP now redirects to HTTPS' : 'HTTP redirect off'))
        .catch((e) => {
          box.checked = !want;
          err.append(errorBox(messageOf(e)));
        })
        .finally(() => {
          box.disabled = !st.https && !box.checked;
        });
    });
    body.append(
      h('h2', {}, 'Redirect'),
      h('div', { class: 'field' }, box, ' ', h('label', { for: 'tls-redirect' }, 'Send every plain-HTTP visit to HTTPS (the CA download stays on HTTP)')),
      ...(st.https ? [] : [h('p', {}, 'Open this page over HTTPS to turn it on.')]),
      err,
    );
  }
}
