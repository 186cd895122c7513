//! The plan's graph as a page (`prov graph --html`), before anything runs: a row per host with
//! its tasks in order, each (host, task) node in the column of its layer (one after the last
//! node it waits for), and the edges between hosts drawn and listed by kind. Chain edges (a
//! host's own order) are the rows themselves.

use super::render;
use crate::plan::{EdgeKind, Plan};
use crate::playbook::Playbook;
use petgraph::Direction;
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use serde::Serialize;

const TEMPLATE: &str = include_str!("graph.html");
/// Where the first column is, after the hosts' names; the room of a column and of a row.
const LEFT: usize = 140;
const COLUMN: usize = 22;
const ROW: usize = 36;

/// The page of `plan` (of `pb`), titled `title`.
pub fn page(plan: &Plan, pb: &Playbook, title: &str) -> Result<String, String> {
    let layers = layers(plan);
    let hosts: Vec<&String> = plan.chains.keys().collect();
    let row_of = |host: &str| hosts.iter().position(|h| *h == host).unwrap_or(0);
    let at = |n: NodeIndex| {
        let r = &plan.graph[n];
        (
            LEFT + COLUMN / 2 + layers[n.index()] * COLUMN,
            ROW / 2 + 8 + row_of(&r.host) * ROW,
        )
    };
    let name = |n: NodeIndex| {
        let r = &plan.graph[n];
        pb.plays[r.play].tasks[r.task].display_name()
    };
    let nodes = plan
        .graph
        .node_indices()
        .map(|n| {
            let (x, y) = at(n);
            NodeView {
                id: format!("n{}", n.index()),
                host: plan.graph[n].host.clone(),
                task: name(n),
                layer: layers[n.index()],
                x,
                y,
            }
        })
        .collect();
    let mut chain = vec![];
    let mut cross = vec![];
    for e in plan.graph.edge_references() {
        let ((x1, y1), (x2, y2)) = (at(e.source()), at(e.target()));
        if *e.weight() == EdgeKind::Chain {
            chain.push(Line { x1, y1, x2, y2 });
            continue;
        }
        let kind = e.weight().name();
        let (from, to) = (
            format!("{}: {}", plan.graph[e.source()].host, name(e.source())),
            format!("{}: {}", plan.graph[e.target()].host, name(e.target())),
        );
        let id = format!("e{}", e.id().index());
        cross.push(EdgeView {
            hl: format!("{id} n{} n{}", e.source().index(), e.target().index()),
            id,
            kind,
            title: format!("{kind}: {to} waits for {from}"),
            path: curve(x1, y1, x2, y2),
            from,
            to,
        });
    }
    let width = LEFT + (layers.iter().max().map_or(0, |m| m + 1)) * COLUMN + COLUMN;
    let kinds = [
        EdgeKind::Needs,
        EdgeKind::Barrier,
        EdgeKind::Linear,
        EdgeKind::Fatal,
        EdgeKind::Serial,
        EdgeKind::RunOnce,
    ]
    .iter()
    .map(|k| KindView {
        name: k.name(),
        count: cross.iter().filter(|e| e.kind == k.name()).count(),
    })
    .filter(|k| k.count > 0)
    .collect();
    let ctx = View {
        title,
        node_count: plan.graph.node_count(),
        layers: layers.iter().max().map_or(0, |m| m + 1),
        hosts: hosts
            .iter()
            .map(|h| HostRow {
                name: h.to_string(),
                y: ROW / 2 + 8 + row_of(h) * ROW,
            })
            .collect(),
        left: LEFT,
        width,
        height: hosts.len() * ROW + 16,
        nodes,
        chain,
        cross,
        kinds,
    };
    render(TEMPLATE, ctx)
}

/// Each node's layer: 0 for a node that waits for nothing, else one more than the highest
/// layer among the nodes it waits for.
fn layers(plan: &Plan) -> Vec<usize> {
    let mut layer = vec![0; plan.graph.node_count()];
    let order = petgraph::algo::toposort(&plan.graph, None).unwrap_or_default();
    for n in order {
        layer[n.index()] = plan
            .graph
            .neighbors_directed(n, Direction::Incoming)
            .map(|p| layer[p.index()] + 1)
            .max()
            .unwrap_or(0);
    }
    layer
}

/// An edge between two rows, bowed so that edges between the same columns stay apart.
fn curve(x1: usize, y1: usize, x2: usize, y2: usize) -> String {
    let bow = (x2.saturating_sub(x1) / 2).max(COLUMN);
    format!(
        "M{x1},{y1} C{},{y1} {},{y2} {x2},{y2}",
        x1 + bow,
        x2.saturating_sub(bow)
    )
}

#[derive(Serialize)]
struct View<'a> {
    title: &'a str,
    node_count: usize,
    layers: usize,
    hosts: Vec<HostRow>,
    left: usize,
    width: usize,
    height: usize,
    nodes: Vec<NodeView>,
    chain: Vec<Line>,
    cross: Vec<EdgeView>,
    kinds: Vec<KindView>,
}

#[derive(Serialize)]
struct HostRow {
    name: String,
    y: usize,
}

#[derive(Serialize)]
struct NodeView {
    id: String,
    host: String,
    task: String,
    layer: usize,
    x: usize,
    y: usize,
}

#[derive(Serialize)]
struct Line {
    x1: usize,
    y1: usize,
    x2: usize,
    y2: usize,
}

#[derive(Serialize)]
struct EdgeView {
    id: String,
    kind: &'static str,
    title: String,
    path: String,
    from: String,
    to: String,
    hl: String,
}

#[derive(Serialize)]
struct KindView {
    name: &'static str,
    count: usize,
}
