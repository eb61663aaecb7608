"""The DRF side of projects: the access pieces every API viewset shares
(``permissions``, ``fields``), API-key authentication and throttling (``auth``), and the
projects, members, keys and invitations endpoints (``views``, ``serializers``)."""
