"""Example out-of-tree edge_vision plugins (see ``pyproject.toml`` for their entry points)."""
