"""The portal's own build tooling: execute notebooks, scaffold guides, validate pages, MkDocs hooks.

It reads executed notebooks and runs no lab code: lab code runs only when notebooks and samples are executed.
From rtclab it takes only rtclab.chromium (the one way this project starts Chromium) and rtclab.headlines
(a file format).
"""
