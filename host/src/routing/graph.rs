//! Drawing the routing table as a Mermaid or Graphviz DOT diagram.
