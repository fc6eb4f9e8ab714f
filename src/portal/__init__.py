"""The portal's own build tooling: execute notebooks, scaffold guides, validate pages, MkDocs hooks.

It reads executed notebooks and never imports rtclab: lab code runs only when notebooks are executed.
"""
