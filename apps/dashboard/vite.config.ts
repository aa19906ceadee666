import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Served by the codeQ server at /ui; `pnpm dev` proxies the API to a local server on :8080.
export default defineConfig({
  base: '/ui/',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, assetsInlineLimit: 4096, chunkSizeWarningLimit: 600 },
  server: { proxy: { '/v1': 'http://localhost:8080' } },
});
