import { describe, expect, it } from 'vitest';
import { parseRoute } from '../src/routes';
import { detectPlatform, httpsUrl, PLATFORM_LABELS, TRUST_STEPS, type Platform } from '../src/views/trust';

describe('trust page', () => {
  it('lives at /trust', () => {
    expect(parseRoute('/trust')).toEqual({ name: 'trust' });
    expect(parseRoute('/trust/')).toEqual({ name: 'trust' });
  });

  it('opens the steps for the visitor platform first', () => {
    const cases: Array<[string, Platform]> = [
      ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120 Safari/537.36', 'windows'],
      ['Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15', 'macos'],
      ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148', 'ios'],
      ['Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120 Mobile Safari/537.36', 'android'],
      ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36', 'linux'],
      ['Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0', 'firefox'],
    ];
    for (const [ua, want] of cases) expect(detectPlatform(ua)).toBe(want);
  });

  it('has steps and a download for every platform', () => {
    for (const p of Object.keys(PLATFORM_LABELS) as Platform[]) {
      expect(TRUST_STEPS[p].steps.length).toBeGreaterThan(1);
      expect(['ca.crt', 'ca.der']).toContain(TRUST_STEPS[p].file);
    }
  });

  it('builds the HTTPS address on the box HTTPS port', () => {
    expect(httpsUrl({ hostname: 'bloud.local', pathname: '/trust' }, 443)).toBe('https://bloud.local/trust');
    expect(httpsUrl({ hostname: '192.168.1.5', pathname: '/trust' }, 8443)).toBe('https://192.168.1.5:8443/trust');
    expect(httpsUrl({ hostname: '::1', pathname: '/' }, 8443)).toBe('https://[::1]:8443/');
  });
});
