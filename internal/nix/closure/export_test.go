package closure

// FromStoreRootWorkers exposes the worker count for determinism tests.
var FromStoreRootWorkers = fromStoreRoot
