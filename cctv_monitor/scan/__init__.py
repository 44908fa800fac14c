"""The scan core: what to scan, who a camera is, what is wrong with it, and the run it belongs to.

Nothing here needs a web app: the database comes as a SQLAlchemy session factory, settings as
:class:`~cctv_monitor.scan.settings.ScanSettings`, credentials from a provider. The one way in is the
ingest boundary (:mod:`cctv_monitor.scan.runs` and :mod:`cctv_monitor.scan.ingest`)::

    run = open_run(factory, target="project:CR-MS-2568-001", source="file", owner=default_owner())
    ingest(factory, run, observations)          # any batch size, any order, idempotent by observation id
    close_run(factory, run, complete=True)      # complete + target: the run covers the whole target

Modules in the order a scan flows: ``settings``, ``scope``, ``pipeline`` (probing), ``ingest``
(expanders, receipts), ``recorder`` (one camera), ``identity``, ``findings``, ``alerts``, ``runs``.
"""
