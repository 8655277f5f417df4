import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Builds ES modules + one stylesheet with FIXED names into ../static/builder/ (committed to git,
// served by Django): builder.js (the workflow builder), run.js (the run page), builder.css (both),
// plus the chunks they import on first use (builder-<name>.js: CodeMirror, yaml + diff, croner,
// and shared code; see frontend/README.md).
export default defineConfig({
  plugins: [react()],
  base: '/static/builder/',
  publicDir: false,
  build: {
    outDir: '../static/builder',
    emptyOutDir: true,
    target: 'es2020',
    sourcemap: false,
    cssCodeSplit: false,
    modulePreload: false,
    reportCompressedSize: true,
    rollupOptions: {
      input: { builder: 'src/main.jsx', run: 'src/run/main.jsx' },
      output: {
        entryFileNames: '[name].js',
        chunkFileNames: 'builder-[name].js',
        assetFileNames: (asset) =>
          (asset.names || [asset.name]).some((n) => n && n.endsWith('.css'))
            ? 'builder.css'
            : '[name][extname]',
      },
    },
  },
  test: {
    include: ['src/**/*.test.{js,jsx}'],
    environment: 'node',
  },
});
