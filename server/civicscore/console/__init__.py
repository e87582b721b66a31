"""The committee's web console (Starlette, Jinja2): a client of civicscore's gRPC API through the Python SDK.

`python -m civicscore --console-listen 127.0.0.1:8080` serves it beside the gRPC server; see `app` for the
pages, `session` for sign-in, cookies and CSRF, `live` for the queue's live updates.
"""
