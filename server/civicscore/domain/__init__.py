"""Pure domain types and computations: no I/O, no clock, no gRPC, no SQL."""
