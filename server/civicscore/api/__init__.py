"""gRPC surface: thin servicers, proto <-> domain conversion, error mapping."""
