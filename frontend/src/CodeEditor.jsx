// A CodeMirror 6 editor for shell scripts or YAML, controlled by `value`.
import { useEffect, useRef } from 'react';
import { EditorState } from '@codemirror/state';
import { EditorView, keymap, lineNumbers, highlightActiveLine } from '@codemirror/view';
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import { StreamLanguage, syntaxHighlighting, defaultHighlightStyle } from '@codemirror/language';
import { shell } from '@codemirror/legacy-modes/mode/shell';
import { yaml } from '@codemirror/lang-yaml';

const LANGUAGES = { shell: () => StreamLanguage.define(shell), yaml: () => yaml() };

export default function CodeEditor({ value, onChange, language, readOnly, label, testid, describedBy }) {
  const host = useRef(null);
  const view = useRef(null);
  const changed = useRef(onChange);
  changed.current = onChange;

  useEffect(() => {
    const state = EditorState.create({
      doc: value,
      extensions: [
        lineNumbers(),
        highlightActiveLine(),
        history(),
        // Tab indents; Escape then Tab leaves the editor (CodeMirror's keyboard-trap escape).
        keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
        LANGUAGES[language](),
        syntaxHighlighting(defaultHighlightStyle),
        EditorState.readOnly.of(Boolean(readOnly)),
        EditorView.editable.of(!readOnly),
        EditorView.contentAttributes.of({
          'aria-label': label,
          'data-testid': testid,
          ...(describedBy ? { 'aria-describedby': describedBy } : {}),
        }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) changed.current(update.state.doc.toString());
        }),
      ],
    });
    view.current = new EditorView({ state, parent: host.current });
    host.current.editorView = view.current; // for browser tests and devtools
    return () => view.current.destroy();
    // The editor is created once per language/read-only; value changes are dispatched below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [language, readOnly, label]);

  useEffect(() => {
    const current = view.current.state.doc.toString();
    if (current !== value) {
      view.current.dispatch({ changes: { from: 0, to: current.length, insert: value } });
    }
  }, [value]);

  return <div className={`wfb-code wfb-code--${language}`} ref={host} />;
}
