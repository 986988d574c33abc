"""Which Prefect state the CLI's flow runs use, set before Prefect is imported (it reads its settings then)."""

from __future__ import annotations

import os


def use_own_prefect_state() -> None:
    """Apply `Settings.prefect_environment` (our own PREFECT_HOME unless the user names a server or a home)
    and refuse a database another Prefect version migrated, in one line, before the embedded API starts."""
    from trtllm_oci.prefect_state import check_prefect_database
    from trtllm_oci.settings import current_settings

    settings = current_settings()
    environment = settings.prefect_environment()
    os.environ.update(environment)
    database = settings.prefect_database(environment)
    if database is not None:
        check_prefect_database(database)
