import { memo, useMemo } from 'react';
import { Handle, Position, ReactFlow } from '@xyflow/react';
import { layoutGraph } from '../layout.js';
import { elapsed, formatDuration } from './logModel.js';

// The run's own stages (what this run planned, even if the workflow changed since), laid out
// by the builder's dagre layout, each node showing its live status and duration.
const RunNode = memo(function RunNode({ data }) {
  const { stage, now } = data;
  const seconds = elapsed(stage, now);
  return (
    <button
      type="button"
      className={`wfr-node wfb-node--${stage.kind} wfr-status-${stage.status}`}
      data-testid={`graph-${stage.name}`}
      title={stage.error || `${stage.name}: ${stage.status_display}`}
    >
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <span className="wfr-node__title">{stage.name}</span>
      <span className="wfr-node__status">
        <span className={`wfr-dot wfr-status-${stage.status}`} aria-hidden="true" />
        {stage.status_display}
        {seconds != null && (
          <span className="wfr-node__time" data-testid={`graph-time-${stage.name}`}>
            {' '}
            · {formatDuration(seconds)}
          </span>
        )}
      </span>
      {stage.reused_from && <span className="wfr-muted">from #{stage.reused_from}</span>}
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </button>
  );
});

const nodeTypes = { run: RunNode };

export default function RunGraph({ stages, now, onOpen }) {
  const shape = stages.map((s) => s.id).join(',');
  const placed = useMemo(() => {
    const nodes = stages.map((s) => ({ id: String(s.id), type: 'run', position: { x: 0, y: 0 }, data: {} }));
    const edges = nodes.slice(1).map((n, i) => ({ id: `e${i}`, source: nodes[i].id, target: n.id }));
    return { nodes: layoutGraph(nodes, edges), edges };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape]);
  const byId = new Map(stages.map((s) => [String(s.id), s]));
  const nodes = placed.nodes.map((n) => ({ ...n, data: { stage: byId.get(n.id), now } }));
  return (
    <div className="wfr-graph" data-testid="run-graph">
      <ReactFlow
        nodes={nodes}
        edges={placed.edges}
        nodeTypes={nodeTypes}
        // The button inside each node gets the click (or Enter/Space) and it bubbles here.
        onNodeClick={(_, node) => onOpen(Number(node.id))}
        nodesDraggable={false}
        nodesConnectable={false}
        elementsSelectable={false}
        fitView
        fitViewOptions={{ padding: 0.1, maxZoom: 1 }}
        minZoom={0.2}
        proOptions={{ hideAttribution: true }}
        panOnScroll
        zoomOnScroll={false}
      />
    </div>
  );
}
