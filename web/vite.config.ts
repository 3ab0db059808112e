// Vite build of the sample app: two pages, the app and the silent-renew callback that
// oidc-client-ts loads in a hidden iframe. web/server serves the build on the same origin as the
// CopilotKit runtime (the IdP's redirect URIs point at that origin).
import { resolve } from "node:path";
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  plugins: [react()],
  build: {
    // CopilotKit's chat pulls in markdown, math and diagram renderers: large chunks are expected
    // (shared/reference/copilotkit.md §6).
    chunkSizeWarningLimit: 8000,
    rollupOptions: {
      input: {
        main: resolve(import.meta.dirname, "index.html"),
        silent: resolve(import.meta.dirname, "silent-renew.html"),
      },
    },
  },
});
