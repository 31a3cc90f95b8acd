"""The Django app of the database store (``INSTALLED_APPS += ["acp_adapters.django.db"]``).

Add it only when runs are kept in the project's database
(``ACP_ADAPTERS["STORE"] = "acp_adapters.django.db.store.DjangoStore"``): it brings the store's tables
(``manage.py migrate``), their read-only admin pages and ``manage.py acp_purge``. With the in-memory
store or Redis, leave it out: no tables, no admin pages. Its label is ``acp_adapters``, the label these
tables and migrations always had, so a database made by an earlier release keeps its data.
"""
