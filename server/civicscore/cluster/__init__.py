"""Several civicscore replicas on one machine behind Debian's nginx: what `make cluster` runs.

An operator's tool, never imported by the server. The pieces are shared with the tests' cluster
harness (tests/cluster.py), which starts its replicas its own way:

- `database`: a PostgreSQL database created when missing (or a fresh one per test cluster), and a
  clear word when PostgreSQL is not reachable;
- `nginx`: finding Debian's nginx, writing its configuration (`grpc_pass` to an upstream of the
  replicas, timeouts for long calls, retries only of calls no replica received) and running it in
  the foreground with every file in one folder;
- `processes`: free ports outside the kernel's ephemeral range, waiting for a port, stopping a process;
- `__main__`: `python -m civicscore.cluster`, three replicas and nginx until Ctrl-C.
"""
