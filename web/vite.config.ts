import { defineConfig } from 'vite'

// Paths from this file, not the working directory: `npm run build:web` runs from the repo root,
// setup and the browser tests may not.
const here = decodeURIComponent(new URL('.', import.meta.url).pathname)

export default defineConfig({
  root: here,
  // Served at `/` by src/api/routes/dashboard.ts; assets under assets/ are content-hashed, so
  // the API can cache them forever and index.html (no-cache) picks up a new build. Relative
  // URLs: the page also works mounted under a prefix (behind a proxy, say).
  base: './',
  build: {
    outDir: `${here}../dist/web`,
    emptyOutDir: true,
    assetsDir: 'assets',
    // The API's CSP allows no inline scripts; keep every asset a file of its own.
    assetsInlineLimit: 0,
    target: 'es2022',
    sourcemap: true,
  },
})
