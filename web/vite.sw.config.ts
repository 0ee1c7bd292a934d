import { defineConfig } from 'vite';

/**
 * The service worker, built alone into one classic script at `dist/service-worker.js` (scope `/`
 * needs it at the root). Runs after the shell build, so it must not empty `dist/`.
 */
export default defineConfig({
  publicDir: false,
  build: {
    outDir: 'dist',
    emptyOutDir: false,
    sourcemap: true,
    target: 'es2022',
    lib: {
      entry: 'src/sw/worker.ts',
      formats: ['iife'],
      name: 'bloudServiceWorker',
      fileName: () => 'service-worker.js',
    },
  },
});
