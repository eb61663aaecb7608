"""The alerting part of the REST API: channels, alert rules, maintenance windows and
incidents (``views``, routed by ``reporting.api.urls``), and the deprecated
``/alerting/...`` paths (``legacy``, routed by ``alerting.urls``)."""
