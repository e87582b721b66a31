"""Generated protobuf and gRPC code for civicscore. Do not edit."""
