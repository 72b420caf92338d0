"""Where the per-image work of a build runs: here in one process (the ordinary build), as a
shard of a sharded build (:mod:`.shards`: the contract, :mod:`.local`: one shard on this
machine), or as a Ray Data pipeline of shards (:mod:`.ray`, the ``reportgen[ray]`` extra).
Importing this package imports neither TensorFlow nor Ray."""
