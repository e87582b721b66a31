"""Property-based fuzzing of every civicscore RPC through the real server (issue 11, item 3).

    catalog       every RPC, read from the generated descriptors (a new RPC is fuzzed without a change here)
    contract      the proto comments: what each field holds, which filter terms a List call takes
    kinds         what kind of value a field holds: its declared domain, its name, its comment
    hostile       the hostile values the issue lists, and a classifier that names them in reports
    pools         realistic values (unit codes, assignment ids, quarters, accepted requests) from the server
    values        values decoded from hypothesis's bytes: realistic, hostile edits, tokens, filters
    strategies    hypothesis strategies for any request, derived from the descriptors
    wire          malformed protobuf wire bytes for the raw-bytes fuzz
    ledger        the rows of every table, read from the SQLite file, to prove refusals change nothing
    domain_check  an independent, conservative reading of the declared field domains
    oracle        the properties a reply must have (documented status, precise message that fits)
    survey        every call counted, every distinct failure grouped, the report
    messages      copying, rendering and shrinking requests; keeping revocations off protected identities
    harness       the server, the fuzzer's own identities, calling, pipelining, minimising, restoring
    budget        how many calls each RPC gets, and the order the RPCs run in

The suite runs in "survey" mode: a failing reply never raises inside hypothesis (which would stop at
the first failure and spend the budget shrinking it); it is recorded, grouped with the failures like it,
minimised by re-sending smaller requests, and every group is reported at the end.
"""
