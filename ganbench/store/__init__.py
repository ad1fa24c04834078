"""Storage: content hashes and atomic writes, cell records and their schema, the loader of run folders, provenance."""
