import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Builds an ES module + stylesheet with FIXED names into ../static/builder/ (committed to git,
// served by Django as /static/builder/builder.{js,css}), plus the chunks it imports on first
// use (builder-<name>.js: CodeMirror, yaml + diff, croner; see frontend/README.md).
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
      input: 'src/main.jsx',
      output: {
        entryFileNames: 'builder.js',
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
