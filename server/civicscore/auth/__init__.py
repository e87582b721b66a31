"""Access control: identities' credentials, roles and permissions, the one interceptor every RPC
goes through, and the audit of refusals.

    policy.METHOD_ACCESS   RPC -> permission (a missing RPC is closed to everyone)
    tokens                 bearer tokens: random, shown once, stored as SHA-256
    authenticator          token or client certificate -> Caller
    interceptor            authenticate, authorise, rate-limit; sets caller.CURRENT
"""
