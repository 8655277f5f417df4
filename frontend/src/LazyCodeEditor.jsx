// CodeMirror (about 130 kB gzipped with its shell and YAML modes) loads the first time a script
// or the YAML tab is shown, not before the pipeline is drawn. Same props as CodeEditor.jsx.
import { Suspense, lazy } from 'react';

const loadEditor = () => import('./CodeEditor.jsx');
const CodeEditor = lazy(loadEditor);

/** Fetch the editor and the YAML helpers while the user looks at the canvas (idle time). */
export function preloadEditors() {
  loadEditor();
  import('./yamlDoc.js');
}

export default function LazyCodeEditor(props) {
  return (
    <Suspense
      fallback={
        <div className={`wfb-code wfb-code--${props.language} wfb-code--loading`} aria-busy="true">
          Loading the editor…
        </div>
      }
    >
      <CodeEditor {...props} />
    </Suspense>
  );
}
