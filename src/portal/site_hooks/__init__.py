"""The portal's MkDocs hooks, one module per concern; `events` wires MkDocs' events to them.

mkdocs.yml lists `src/portal/site_hooks/events.py` under `hooks:`. The other modules are plain functions,
most of them string to string (HTML or Markdown in, out), tested without a build in tests/portal/.
"""
