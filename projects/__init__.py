"""Projects: the unit everything an owner has belongs to (monitors, channels, rules,
maintenance windows, status pages, configuration applies), its members and their
roles, its API keys and invitations.

It sits beside ``accounts`` and ``telemetry``, below ``monitors``: the apps above give
their objects a ``project`` (``projects.models.InProject``) and ask
``monitors.selectors.visible_to`` (built on ``projects.selectors``) who may see them.
"""
