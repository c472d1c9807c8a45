//! Path graphs (AGV floors, roads) with all-pairs shortest paths computed once at build.
//!
//! Lengths are whole millimetres, so that shortest paths and their tie-breaks are exact
//! and identical on every machine.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use nalgebra::Point2;

/// A node of a graph.
#[derive(Clone, Debug)]
pub struct GraphNode {
    pub id: String,
    pub pos: Point2<f64>,
}

/// A directed or two-way segment.
#[derive(Clone, Debug)]
pub struct GraphEdge {
    pub from: u32,
    pub to: u32,
    /// Length in millimetres.
    pub length_mm: u64,
    pub two_way: bool,
    /// Speed limit, m/s.
    pub speed_limit: Option<f64>,
}

impl GraphEdge {
    pub fn length_m(&self) -> f64 {
        self.length_mm as f64 / 1000.0
    }
}

/// A resource of a path graph that one vehicle holds at a time: traffic control
/// reserves nodes and edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Resource {
    Node(u32),
    Edge(u32),
}

/// No route between two nodes.
pub const UNREACHABLE: u64 = u64::MAX;

/// A graph with its shortest-path tables.
#[derive(Clone, Debug)]
pub struct Graph {
    pub id: String,
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
    /// Outgoing `(edge, neighbour)` per node, in edge order.
    pub out: Vec<Vec<(u32, u32)>>,
    /// `dist[u * n + v]`: shortest length u -> v in mm, or [`UNREACHABLE`].
    dist: Vec<u64>,
    /// `next[u * n + v]`: the node after u on a shortest path to v (u itself when u == v).
    next: Vec<u32>,
    /// Nodes with a charging station.
    pub chargers: Vec<u32>,
}

impl Graph {
    /// Builds the adjacency and the all-pairs tables (one Dijkstra per target on the
    /// reversed graph; ties go to the lower node index, so routes are reproducible).
    pub fn new(id: String, nodes: Vec<GraphNode>, edges: Vec<GraphEdge>, chargers: Vec<u32>) -> Graph {
        let n = nodes.len();
        let mut out = vec![Vec::new(); n];
        let mut incoming: Vec<Vec<(u32, u64)>> = vec![Vec::new(); n];
        for (e, edge) in edges.iter().enumerate() {
            out[edge.from as usize].push((e as u32, edge.to));
            incoming[edge.to as usize].push((edge.from, edge.length_mm));
            if edge.two_way {
                out[edge.to as usize].push((e as u32, edge.from));
                incoming[edge.from as usize].push((edge.to, edge.length_mm));
            }
        }
        let mut dist = vec![UNREACHABLE; n * n];
        let mut next = vec![u32::MAX; n * n];
        let mut heap = BinaryHeap::new();
        for target in 0..n {
            dist[target * n + target] = 0;
            next[target * n + target] = target as u32;
            heap.push(Reverse((0u64, target as u32)));
            while let Some(Reverse((d, w))) = heap.pop() {
                if d > dist[w as usize * n + target] {
                    continue;
                }
                for &(u, len) in &incoming[w as usize] {
                    let nd = d.saturating_add(len);
                    let slot = u as usize * n + target;
                    if nd < dist[slot] || (nd == dist[slot] && w < next[slot]) {
                        dist[slot] = nd;
                        next[slot] = w;
                        heap.push(Reverse((nd, u)));
                    }
                }
            }
        }
        Graph { id, nodes, edges, out, dist, next, chargers }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Shortest length from `u` to `v` in millimetres, or [`UNREACHABLE`].
    pub fn distance_mm(&self, u: u32, v: u32) -> u64 {
        self.dist[u as usize * self.nodes.len() + v as usize]
    }

    /// The node after `u` on a shortest path to `v`.
    pub fn next_hop(&self, u: u32, v: u32) -> Option<u32> {
        let hop = self.next[u as usize * self.nodes.len() + v as usize];
        (hop != u32::MAX).then_some(hop)
    }

    /// The edge that leads from `u` to its neighbour `v`.
    pub fn edge_between(&self, u: u32, v: u32) -> Option<u32> {
        self.out[u as usize].iter().find(|&&(_, to)| to == v).map(|&(e, _)| e)
    }

    /// The node with this id.
    pub fn node(&self, id: &str) -> Option<u32> {
        self.nodes.iter().position(|n| n.id == id).map(|i| i as u32)
    }

    /// A shortest path from `from` to `to` that avoids the nodes in `avoid` (Dijkstra at
    /// run time, for replanning around a blocked node). Excludes `from`, includes `to`.
    pub fn path_avoiding(&self, from: u32, to: u32, avoid: &[u32]) -> Option<Vec<u32>> {
        let n = self.nodes.len();
        let mut dist = vec![UNREACHABLE; n];
        let mut prev = vec![u32::MAX; n];
        let mut heap = BinaryHeap::new();
        dist[from as usize] = 0;
        heap.push(Reverse((0u64, from)));
        while let Some(Reverse((d, u))) = heap.pop() {
            if u == to {
                break;
            }
            if d > dist[u as usize] {
                continue;
            }
            for &(e, v) in &self.out[u as usize] {
                if avoid.contains(&v) {
                    continue;
                }
                let nd = d.saturating_add(self.edges[e as usize].length_mm);
                if nd < dist[v as usize] {
                    dist[v as usize] = nd;
                    prev[v as usize] = u;
                    heap.push(Reverse((nd, v)));
                }
            }
        }
        if dist[to as usize] == UNREACHABLE {
            return None;
        }
        let mut path = vec![to];
        let mut at = to;
        while prev[at as usize] != from {
            at = prev[at as usize];
            if at == u32::MAX {
                return None;
            }
            path.push(at);
        }
        path.reverse();
        Some(path)
    }
}

/// Distance between two points in whole millimetres (at least 1, so every edge takes time).
pub fn length_mm(a: Point2<f64>, b: Point2<f64>) -> u64 {
    (((b - a).norm() * 1000.0).round() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, x: f64, y: f64) -> GraphNode {
        GraphNode { id: id.into(), pos: Point2::new(x, y) }
    }

    fn edge(from: u32, to: u32, two_way: bool, g: &[GraphNode]) -> GraphEdge {
        let length_mm = length_mm(g[from as usize].pos, g[to as usize].pos);
        GraphEdge { from, to, length_mm, two_way, speed_limit: None }
    }

    #[test]
    fn shortest_paths_follow_one_way_edges() {
        // A one-way square a -> b -> c -> d -> a with a two-way spur b - e.
        let nodes = vec![
            node("a", 0.0, 0.0),
            node("b", 10.0, 0.0),
            node("c", 10.0, 10.0),
            node("d", 0.0, 10.0),
            node("e", 20.0, 0.0),
        ];
        let edges = vec![
            edge(0, 1, false, &nodes),
            edge(1, 2, false, &nodes),
            edge(2, 3, false, &nodes),
            edge(3, 0, false, &nodes),
            edge(1, 4, true, &nodes),
        ];
        let g = Graph::new("g".into(), nodes, edges, Vec::new());
        assert_eq!(g.distance_mm(0, 1), 10_000);
        assert_eq!(g.distance_mm(1, 0), 30_000, "must go round the one-way loop");
        assert_eq!(g.next_hop(1, 0), Some(2));
        assert_eq!(g.distance_mm(4, 0), 40_000);
        assert_eq!(g.next_hop(4, 3), Some(1));
        assert_eq!(g.path_avoiding(0, 3, &[]), Some(vec![1, 2, 3]));
        assert_eq!(g.path_avoiding(0, 3, &[2]), None);
    }
}
