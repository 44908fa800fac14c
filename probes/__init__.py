"""Protocol adapters (discovery, ONVIF, RTSP). They return :mod:`probes.results` dataclasses and
never import Flask or the database, so field agents can run them alone."""
