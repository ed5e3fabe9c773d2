"""Shipping a run's files to a server that does not share the worker's filesystem.

A job writes its run files locally (``run.log()`` stays one ``O_APPEND`` write); a
:class:`~whirr.shipping.shipper.Shipper` thread sends what was appended, by attempt-local
byte offset, to the server's ``PUT /runs/{id}/files/{name}`` (see ``docs/http-api.md``).

- ``ledger``: what the server acknowledged for one run, kept on the worker's disk so a
  killed worker's successor resumes where it stopped.
- ``scan``: what is new in a run directory (complete lines of the ``.jsonl`` streams, any
  bytes of ``output.log``, whole files that changed, finished artifacts).
- ``shipper``: the thread that sends it, used by a remote worker (with ledgers) and by a
  direct run (in memory).
"""
