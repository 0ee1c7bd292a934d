import { defineConfig } from 'vite';

/**
 * The shell. `npm run dev` serves it with the API, auth and embedded apps proxied to a running
 * Bloud (the proxy, default http://127.0.0.1:8080; override with BLOUD_DEV_TARGET), so the
 * worker and the iframes stay same-origin with the shell.
 */
const target = process.env.BLOUD_DEV_TARGET ?? 'http://127.0.0.1:8080';

export default defineConfig({
  appType: 'spa',
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    sourcemap: true,
    target: 'es2022',
  },
  server: {
    proxy: {
      '/api': { target, changeOrigin: false },
      '/auth': { target, changeOrigin: false },
      '/embed': { target, changeOrigin: false, ws: true },
    },
  },
});
