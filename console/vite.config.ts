/**
 * Vite build of the web console: Preact (JSX through @preact/preset-vite), output in console/dist
 * (git-ignored), served by the API at / (src/api/routes/console.ts). No inline scripts or styles
 * are emitted, so the strict Content-Security-Policy of the console holds.
 */
import { defineConfig } from "vite";
import preact from "@preact/preset-vite";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  root: here,
  base: "/",
  plugins: [preact({ devToolsInProd: false, prefreshEnabled: false })],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1024,
  },
  logLevel: "warn",
});
