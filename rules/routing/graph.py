"""The road graph both kinds of round drive on: edges (one-way or not), integer weights, Dijkstra.

Gritting's arc routes (rules.routing.carp) and the bin rounds on the road network
(rules.routing.roads) share it. Weights are integers (metres for gritting, milliseconds of
driving for bins); Dijkstra keeps the edge each node was reached by, so a path can be walked
back. A search may start from several nodes at once, each with its own head start: a bin
part-way along a street reaches either end of it.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rules.errors import InvalidArcRouting

UNREACHABLE = int(np.iinfo(np.int64).max // 4)


@dataclass(frozen=True)
class Edge:
    """An undirected road segment in the graph (oneway=True: only tail -> head)."""
    edge_id: str
    tail: str
    head: str
    length_m: float
    oneway: bool = False


class RoadGraph:
    """The road graph with integer weights; Dijkstra with the edge each node was reached by."""

    def __init__(self, edges: Sequence[Edge], weights: Sequence[int]) -> None:
        if not edges:
            raise InvalidArcRouting("the road graph has no edges", hint="give the route's road segments")
        self.edges = list(edges)
        self.weights = list(weights)
        self.nodes: list[str] = []
        self.index: dict[str, int] = {}
        self.edge_index: dict[str, int] = {}
        for k, edge in enumerate(self.edges):
            if edge.edge_id in self.edge_index:
                raise InvalidArcRouting(f"edge {edge.edge_id} appears twice in the graph")
            self.edge_index[edge.edge_id] = k
            for node in (edge.tail, edge.head):
                if node not in self.index:
                    self.index[node] = len(self.nodes)
                    self.nodes.append(node)
        self.out: list[list[tuple[int, int, int]]] = [[] for _ in self.nodes]     # (to, weight, edge)
        for k, edge in enumerate(self.edges):
            tail, head = self.index[edge.tail], self.index[edge.head]
            self.out[tail].append((head, self.weights[k], k))
            if not edge.oneway and tail != head:
                self.out[head].append((tail, self.weights[k], k))

    def node_index(self, node: str, what: str) -> int:
        if node not in self.index:
            raise InvalidArcRouting(f"{what} node {node} is on no edge of the graph",
                                    hint="the depot must be a node of the road graph")
        return self.index[node]

    def dijkstra(self, source: int | Mapping[int, int], targets: set[int]) -> tuple[list[int], list[int]]:
        """Distances from `source` (UNREACHABLE where there is no path) and each node's incoming edge.

        `source` is one node, or several with the weight already spent reaching each (a start
        part-way along an edge); a node reached from no edge keeps -1. Stops once every target is
        settled; plain lists, as numpy scalars are slow in this loop."""
        size = len(self.nodes)
        dist = [UNREACHABLE] * size
        via = [-1] * size
        settled = bytearray(size)
        starts = {source: 0} if isinstance(source, int) else source
        heap = []
        for node, head_start in starts.items():
            if head_start < dist[node]:
                dist[node] = head_start
                heap.append((head_start, node))
        heapq.heapify(heap)
        left = len(targets)
        out = self.out
        while heap and left:
            d, node = heapq.heappop(heap)
            if settled[node]:
                continue
            settled[node] = 1
            if node in targets:
                left -= 1
            for to, weight, edge in out[node]:
                nd = d + weight
                if nd < dist[to] and not settled[to]:
                    dist[to] = nd
                    via[to] = edge
                    heapq.heappush(heap, (nd, to))
        return [d if settled[n] else UNREACHABLE for n, d in enumerate(dist)], via

    def other_end(self, edge: int, node: int) -> int:
        e = self.edges[edge]
        tail, head = self.index[e.tail], self.index[e.head]
        return head if node == tail else tail

    def path_to(self, via: Sequence[int], target: int) -> list[tuple[int, int, int]]:
        """The edges (edge, from node, to node) walked from the search's start to `target`, in order."""
        back: list[tuple[int, int, int]] = []
        node = target
        while via[node] >= 0:
            edge = via[node]
            previous = self.other_end(edge, node)
            back.append((edge, previous, node))
            node = previous
        return back[::-1]
