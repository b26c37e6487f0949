"""Model stages: load (hub id, folder, fixture) and merge (mergekit recipe)."""
