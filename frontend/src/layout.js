// Automatic left-to-right layout of the pipeline graph with dagre (no hand-placed coordinates).
import dagre from '@dagrejs/dagre';

// Node boxes: wide enough for a one-line summary at 14px (the text is not scaled down; the
// canvas opens at 100% zoom).
export const NODE_WIDTH = 232;
export const NODE_HEIGHT = 78;
export const END_SIZE = 44;

function sizeOf(node) {
  return node.type === 'end' ? { width: END_SIZE, height: END_SIZE } : { width: NODE_WIDTH, height: NODE_HEIGHT };
}

/** Returns new nodes with `position` (top-left, pixels) set by dagre; edges are unchanged. */
export function layoutGraph(nodes, edges) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 40, ranksep: 56, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of nodes) g.setNode(node.id, sizeOf(node));
  for (const edge of edges) g.setEdge(edge.source, edge.target);
  dagre.layout(g);
  return nodes.map((node) => {
    const { x, y } = g.node(node.id);
    const { width, height } = sizeOf(node);
    return { ...node, position: { x: x - width / 2, y: y - height / 2 }, width, height };
  });
}
