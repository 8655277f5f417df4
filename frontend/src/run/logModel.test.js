import { describe, expect, it } from 'vitest';
import { LogStore, buildRows, formatDuration, highlightHtml, stripAnsi } from './logModel.js';

describe('LogStore', () => {
  it('keeps a colour across lines until a reset, and only then takes the fast path', () => {
    const store = new LogStore();
    store.addChunk({ seq: 0, stage_run_id: 1, text: '\u001b[33mwarn\nstill\u001b[0m\nplain\n', at: 't' });
    expect(store.lines[1].html).toContain('ansi-yellow-fg');
    expect(store.lines[2].html).toBe('plain');
  });

  it('numbers lines across stages, keeps colour state within a stage, drops repeats', () => {
    const store = new LogStore();
    store.addChunk({ seq: 0, stage_run_id: 1, text: '\u001b[31mred\nstill red\u001b[0m\n', at: 't' });
    expect(store.addChunk({ seq: 0, stage_run_id: 1, text: 'again\n', at: 't' })).toBe(false);
    store.addChunk({ seq: 1, stage_run_id: 2, text: 'plain <b>\n', at: 't' });
    expect(store.lines.map((l) => l.text)).toEqual(['red', 'still red', 'plain <b>']);
    expect(store.lines[1].html).toContain('ansi-red-fg');
    expect(store.lines[2].html).toBe('plain &lt;b&gt;');
    expect(store.search('RED')).toEqual([[0, 0], [1, 6]]);
  });

  it('leaves collapsed stages as a header row only', () => {
    const store = new LogStore();
    store.addChunk({ seq: 0, stage_run_id: 1, text: 'a\nb\n', at: 't' });
    store.addChunk({ seq: 1, stage_run_id: 2, text: 'c\n', at: 't' });
    const stages = [{ id: 1, status: 'succeeded' }, { id: 2, status: 'running' }, { id: 3, status: 'pending' }];
    const open = buildRows(store, stages, new Set());
    expect([...open.rows]).toEqual([-1, 0, 1, -2, 2]);
    const shut = buildRows(store, stages, new Set([1]));
    expect(shut.rows.length).toBe(3);
    expect(shut.rowOfLine[0]).toBe(-1);
    expect(shut.rowOfLine[2]).toBe(2);
  });
});

describe('highlightHtml', () => {
  it('marks matches in text, never inside tags or entities', () => {
    const html = '<span class="ansi-red-fg">a &amp; span</span> span';
    expect(highlightHtml(html, 'span', 1)).toBe(
      '<span class="ansi-red-fg">a &amp; <mark>span</mark></span> <mark class="current">span</mark>',
    );
    expect(highlightHtml('x &lt;b&gt;', '<b>')).toBe('x <mark>&lt;b&gt;</mark>');
  });
});

it('strips escape codes and formats durations', () => {
  expect(stripAnsi('\u001b[1;32mok\u001b[0m \u001b]8;;http://x\u0007link\u001b]8;;\u0007')).toBe('ok link');
  expect(formatDuration(5.04)).toBe('5.0 s');
  expect(formatDuration(65)).toBe('1m 05s');
  expect(formatDuration(3725)).toBe('1h 02m');
  expect(formatDuration(null)).toBe('');
});
