"""``whirr migrate``: an original whirr (0.5.3) project's database turned into this log.

``detect`` tells such a database apart (every other command refuses it with a hint),
``original`` reads it, ``timeline`` turns its rows into events at their recorded times,
and ``convert`` backs the original up and puts the new log in its place.
"""
