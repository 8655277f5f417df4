import { useEffect, useMemo } from 'react';
import {
  Background,
  Controls,
  Handle,
  Panel,
  Position,
  ReactFlow,
  useNodesInitialized,
} from '@xyflow/react';
import { documentToGraph } from './graph.js';
import { layoutGraph } from './layout.js';

function StepNode({ data }) {
  return (
    <div className={`wfb-node wfb-node--${data.kind}`} title={`${data.title}: ${data.summary}`}>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="wfb-node__title">{data.title}</div>
      <div className="wfb-node__summary">{data.summary}</div>
      {data.badges.length > 0 && (
        <div className="wfb-node__badges">
          {data.badges.map((badge) => (
            <span key={badge} className="wfb-badge">
              {badge}
            </span>
          ))}
        </div>
      )}
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
}

function EndNode() {
  return (
    <div className="wfb-end" aria-label="End of the pipeline">
      <Handle type="target" position={Position.Left} isConnectable={false} />
    </div>
  );
}

const nodeTypes = { step: StepNode, end: EndNode };

const PIPELINE_LABELS = {
  ci: 'CI',
  app_cd: 'App CD',
  cron_cd: 'Cron CD',
  worker_cd: 'Worker CD',
};

// Flags the mount element once React Flow has measured (i.e. drawn) the nodes.
function ReadyFlag({ onReady }) {
  const initialized = useNodesInitialized();
  useEffect(() => {
    if (initialized) onReady();
  }, [initialized, onReady]);
  return null;
}

export default function WorkflowGraph({ doc, onReady }) {
  const { nodes, edges } = useMemo(() => {
    const graph = documentToGraph(doc);
    return { nodes: layoutGraph(graph.nodes, graph.edges), edges: graph.edges.map((e) => ({ ...e, type: 'default' })) };
  }, [doc]);
  const project = doc?.project?.name;
  const pipeline = PIPELINE_LABELS[doc?.pipeline_type] || doc?.pipeline_type;
  return (
    // Uncontrolled (defaultNodes/defaultEdges) so React Flow keeps the measured
    // sizes and selection itself; that is also what makes useNodesInitialized work.
    <ReactFlow
      defaultNodes={nodes}
      defaultEdges={edges}
      nodeTypes={nodeTypes}
      nodesDraggable={false}
      nodesConnectable={false}
      elementsSelectable
      fitView
      fitViewOptions={{ padding: 0.2, maxZoom: 1.25 }}
      proOptions={{ hideAttribution: true }}
    >
      <Panel position="top-left" className="wfb-header">
        <strong>{doc?.name}</strong>
        {project && <span className="wfb-header__muted"> · {project}</span>}
        {pipeline && <span className="wfb-badge wfb-badge--pipeline">{pipeline}</span>}
      </Panel>
      <Controls showInteractive={false} />
      <Background />
      <ReadyFlag onReady={onReady} />
    </ReactFlow>
  );
}
