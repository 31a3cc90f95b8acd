"""The floors: a bare route per framework doing the least any ACP server must do.

Each floor parses the request body with pydantic into a small model and answers with a precomputed
Run (a stream: N precomputed SSE events), on the same server as the deployment it is the floor of.
"""
