"""The Jupyter server face: REST routes under ``/mlops/api/`` and a server-sent event stream.

``app.MlopsServerApp`` (a jupyter_server ``ExtensionApp``) builds the Workspace once; ``handlers`` holds one
``APIHandler`` per resource; ``models`` the REST models, derived from the core's records; ``spec`` writes the
schemas of ``openapi.yaml`` from those models (its routes are kept in step with ``handlers.ROUTES`` by a test);
``events`` forwards the durable event log to the stream.
"""
