"""The Jupyter server face: REST routes under ``/mlops/api/`` and a server-sent event stream.

``app.MlopsServerApp`` (a jupyter_server ``ExtensionApp``) builds the Workspace once; ``handlers`` holds one
``APIHandler`` per resource; ``models`` the pydantic request/response models; ``events`` the in-process event
feed; ``openapi.yaml`` the route spec (a test keeps it in step with ``handlers.ROUTES``).
"""
