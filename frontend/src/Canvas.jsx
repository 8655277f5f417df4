// The pipeline canvas: React Flow, laid out by dagre, with drop targets on every arrow.
import { useCallback, useEffect, useMemo, useState } from 'react';
import {
  Background,
  BaseEdge,
  Controls,
  EdgeLabelRenderer,
  Handle,
  Position,
  ReactFlow,
  applyNodeChanges,
  getBezierPath,
  useNodesInitialized,
  useReactFlow,
} from '@xyflow/react';
import { documentToGraph } from './graph.js';
import { layoutGraph } from './layout.js';

export const DRAG_TYPE = 'application/x-workflow-palette';

function StepNode({ id, data }) {
  const { kind, title, summary, badges, errorCount, onDropItem } = data;
  const droppable = kind === 'deploy' || kind === 'gate';
  return (
    <div
      className={`wfb-node wfb-node--${kind}${errorCount ? ' wfb-node--invalid' : ''}`}
      title={`${title}: ${summary}`}
      onDragOver={droppable ? (e) => e.preventDefault() : undefined}
      onDrop={(e) => {
        const item = e.dataTransfer.getData(DRAG_TYPE);
        if (!item) return;
        e.preventDefault();
        e.stopPropagation();
        onDropItem?.(item, { node: id });
      }}
    >
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="wfb-node__title">
        {title}
        {errorCount > 0 && (
          <span className="wfb-node__error" data-testid="node-error" aria-label={`${errorCount} problem(s)`}>
            !
          </span>
        )}
      </div>
      <div className="wfb-node__summary">{summary || '\u00a0'}</div>
      {badges.length > 0 && (
        <div className="wfb-node__badges">
          {badges.map((badge) => (
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
    <div className="wfb-end" title="End of the pipeline">
      <Handle type="target" position={Position.Left} isConnectable={false} />
    </div>
  );
}

/** An arrow with a "+" drop target at its middle (also a button: insert the armed palette item). */
function InsertEdge({ id, source, target, sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition, markerEnd, data }) {
  const [path, labelX, labelY] = getBezierPath({ sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition });
  const [over, setOver] = useState(false);
  return (
    <>
      <BaseEdge id={id} path={path} markerEnd={markerEnd} />
      {data?.editable && (
        <EdgeLabelRenderer>
          <button
            type="button"
            className={`wfb-insert nodrag nopan${over ? ' wfb-insert--over' : ''}`}
            style={{ transform: `translate(-50%, -50%) translate(${labelX}px, ${labelY}px)` }}
            data-testid={`insert-${source}-${target}`}
            aria-label={`Insert between ${data.sourceTitle} and ${data.targetTitle}`}
            onDragOver={(e) => {
              e.preventDefault();
              setOver(true);
            }}
            onDragLeave={() => setOver(false)}
            onDrop={(e) => {
              e.preventDefault();
              e.stopPropagation();
              setOver(false);
              data.onDropItem(e.dataTransfer.getData(DRAG_TYPE), { source, target });
            }}
            onClick={() => data.onDropItem(null, { source, target })}
          >
            +
          </button>
        </EdgeLabelRenderer>
      )}
    </>
  );
}

const nodeTypes = { step: StepNode, end: EndNode };
const edgeTypes = { insert: InsertEdge };

// Once drawn, and whenever steps are added or removed, show the whole pipeline: at 100% when
// it fits, zoomed out down to 50% when it does not (the controls zoom back in). A pipeline too
// long even then shows its start (Source), not its middle; the rest is a pan away.
function FitAndReady({ onReady, shape }) {
  const initialized = useNodesInitialized();
  const { fitView, getNodes, getNodesBounds, getViewport, setViewport } = useReactFlow();
  useEffect(() => {
    if (!initialized) return;
    fitView({ padding: 0.06, minZoom: 0.5, maxZoom: 1 })
      .then(() => {
        const { x, y, zoom } = getViewport();
        const bounds = getNodesBounds(getNodes());
        if (x + bounds.x * zoom < 0) return setViewport({ x: 16 - bounds.x * zoom, y, zoom });
        return undefined;
      })
      .then(onReady);
  }, [initialized, shape, fitView, getNodes, getNodesBounds, getViewport, setViewport, onReady]);
  return null;
}

export default function Canvas({ doc, selected, onSelect, errorsByNode, editable, onDropItem, onMoveEnvironment, onReady }) {
  const graph = useMemo(() => documentToGraph(doc), [doc]);
  const laidOut = useMemo(() => layoutGraph(graph.nodes, graph.edges), [graph]);
  const titles = useMemo(() => Object.fromEntries(graph.nodes.map((n) => [n.id, n.data.title === 'Deploy' ? `Deploy ${n.data.summary}` : n.data.title])), [graph]);
  const decorate = useCallback(
    (nodes) =>
      nodes.map((n) => ({
        ...n,
        selected: n.id === selected,
        draggable: editable && n.draggable,
        ariaLabel: `${titles[n.id] || 'End'}${n.data.summary && n.data.kind !== 'deploy' ? `: ${n.data.summary}` : ''}`,
        data: { ...n.data, errorCount: (errorsByNode[n.id] || []).length, onDropItem: editable ? onDropItem : null },
      })),
    [selected, editable, errorsByNode, onDropItem, titles],
  );
  const [nodes, setNodes] = useState(() => decorate(laidOut));
  useEffect(() => setNodes(decorate(laidOut)), [laidOut, decorate]);
  const edges = useMemo(
    () =>
      graph.edges.map((e) => ({
        ...e,
        focusable: false,
        data: { editable, onDropItem, sourceTitle: titles[e.source], targetTitle: titles[e.target] || 'the end' },
      })),
    [graph, editable, onDropItem, titles],
  );

  const onNodesChange = useCallback((changes) => setNodes((current) => applyNodeChanges(changes, current)), []);
  const onNodeDragStop = useCallback(
    (_event, node) => {
      const from = Number(node.id.split(':')[1]);
      const centres = laidOut.filter((n) => n.data.kind === 'deploy').map((n) => n.position.x + n.width / 2);
      const to = centres.filter((x, i) => i !== from && x < node.position.x + node.width / 2).length;
      if (to !== from) onMoveEnvironment(from, to);
      else setNodes(decorate(laidOut)); // back into place
    },
    [laidOut, decorate, onMoveEnvironment],
  );

  return (
    <ReactFlow
      nodes={nodes}
      edges={edges}
      nodeTypes={nodeTypes}
      edgeTypes={edgeTypes}
      onNodesChange={onNodesChange}
      onNodeDragStop={onNodeDragStop}
      onNodeClick={(_e, node) => node.type !== 'end' && onSelect(node.id)}
      onPaneClick={() => onSelect('workflow')}
      nodesConnectable={false}
      elementsSelectable={false}
      defaultViewport={{ x: 16, y: 40, zoom: 1 }}
      minZoom={0.3}
      maxZoom={1.5}
      proOptions={{ hideAttribution: true }}
      onDragOver={(e) => e.preventDefault()}
      onDrop={(e) => {
        const item = e.dataTransfer.getData(DRAG_TYPE);
        if (item) {
          e.preventDefault();
          onDropItem(item, { node: 'canvas' });
        }
      }}
    >
      <Controls showInteractive={false} />
      <Background />
      <FitAndReady onReady={onReady} shape={graph.nodes.map((n) => n.id).join(',')} />
    </ReactFlow>
  );
}
