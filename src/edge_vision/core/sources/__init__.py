"""Frame sources. Each is a plugin in the ``edge_vision.sources`` entry-point group."""
