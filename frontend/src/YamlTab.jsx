// The YAML tab: the same document in a CodeMirror YAML editor; edits in either view show in the
// other, invalid YAML shows line and column. Loaded on first use (Editor.jsx).
import { useRef, useState } from 'react';
import CodeEditor from './CodeEditor.jsx';
import { editablePart, fromYaml, toYaml } from './yamlDoc.js';

export default function YamlTab({ doc, editable, onChange }) {
  const [text, setText] = useState(() => toYaml(doc));
  const [error, setError] = useState(null);
  const lastDoc = useRef(doc);
  // A change made elsewhere (undo, reload) replaces the text; our own edits do not.
  if (doc !== lastDoc.current) {
    lastDoc.current = doc;
    const parsed = fromYaml(text, doc);
    if (parsed.error || JSON.stringify(editablePart(parsed.doc)) !== JSON.stringify(editablePart(doc))) {
      setText(toYaml(doc));
      setError(null);
    }
  }
  return (
    <div className="wfb-yaml">
      <CodeEditor
        language="yaml"
        value={text}
        readOnly={!editable}
        label="Workflow document (YAML)"
        testid="yaml-editor"
        describedBy={error ? 'yaml-error' : undefined}
        onChange={(value) => {
          setText(value);
          const parsed = fromYaml(value, doc);
          if (parsed.error) setError(parsed.error);
          else {
            setError(null);
            lastDoc.current = parsed.doc;
            onChange(parsed.doc);
          }
        }}
      />
      {error && (
        <div id="yaml-error" className="wfb-field__error" role="alert" data-testid="yaml-error">
          Line {error.line}, column {error.col}: {error.message}
        </div>
      )}
    </div>
  );
}
