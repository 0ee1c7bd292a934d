import { defineConfig } from 'vite';

/**
 * The dev server only (`npm run dev`); the production build is scripts/build.mjs (tsc + esbuild,
 * the same script Nix runs). It serves the shell with the API, auth and embedded apps proxied to
 * a running Bloud (the proxy, default http://127.0.0.1:8080; override with BLOUD_DEV_TARGET), so
 * the worker and the iframes stay same-origin with the shell.
 */
const target = process.env.BLOUD_DEV_TARGET ?? 'http://127.0.0.1:8080';

export default defineConfig({
  appType: 'spa',
  server: {
    proxy: {
      '/api': { target, changeOrigin: false },
      '/auth': { target, changeOrigin: false },
      '/embed': { target, changeOrigin: false, ws: true },
    },
  },
});
