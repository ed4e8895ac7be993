"""The inference protocols an endpoint speaks besides ``POST /score``: MLflow's scoring server (``/invocations``)
and the Open Inference Protocol v2 over REST (``/v2/...``).

Each protocol only translates at the edges of the one scoring pipeline in ``app.py``: its request body becomes the
body ``/score`` takes (one of MLflow's JSON formats), and ``/score``'s answer becomes the protocol's answer. A
protocol that parses its body to translate it hands the parsed payload over (``wire.Translated``): a scorer in
the router takes it as it is, and the JSON body is written only for what reads it (a deployment process, the
collector, the mirror). So the traffic split, mirroring, collection for monitoring, keys, metrics and the bad-input
rules are the same on every route, and what is collected for monitoring reads the same whichever protocol a
request came in.

- ``invocations``: MLflow's content types (JSON, CSV, Parquet) and error shape;
- ``tensors``: v2 tensors (JSON ``data`` and the binary tensor extension) to rows, predictions to tensors;
- ``describe``: a deployment's inputs and outputs, from its MLflow signature or its ONNX graph;
- ``v2``: the v2 routes' paths, names and answers.
"""
