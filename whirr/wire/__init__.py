"""The wire: what whirr's client and server say to each other over HTTP.

Request and response bodies (``schemas``, ``studies``, ``run_events``) as msgspec
Structs, pure like ``whirr.events``: no I/O, nothing but msgspec. The server decodes
requests and encodes responses with them, ``whirr.client`` decodes with them, the OpenAPI
document is generated from them, and ``tests/fixtures/protocol/`` (shared with the Rust
worker) must decode with them. They are also the one JSON shape of each entity that every
``--json`` prints.
"""
