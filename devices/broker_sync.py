"""After a registry change: bring the broker in line, and say plainly whether it worked.

With dynamic security (CITYOPS_DEVICES__BROKER_DYNSEC_FILE / __BROKER_ADMIN_URL) the plugin's
file is written and the running broker changed over its control API and read back;
otherwise the password and ACL files are written and the broker sent SIGHUP. Callers print
the message and fail (exit 1, or say so in the answer) when `done` is False.
"""

from __future__ import annotations

from collections.abc import Sequence

from cityops.settings import Settings
from cityops.storage import Database
from devices.broker_auth import apply_dynsec, issued_secrets, sync_broker
from devices.errors import BrokerAuthError


async def apply_to_broker(db: Database, settings: Settings, issued: Sequence[tuple[str, str, bool]] = (), *,
                          file_only: bool = False, others_may_wait: bool = False) -> tuple[bool, str]:
    """Apply the registry to the broker; (done, what happened). A failure is reported, not raised:
    the database change stands, and `cityops device sync-broker` applies it later. The CLI and
    the admin API call this after every change.
    `issued`: secrets just issued, (name, secret, is_service): the control API needs them in clear.
    `others_may_wait`: accounts still missing from the broker for want of a secret (an earlier
    change that did not reach it) are named but do not fail this change (the admin API)."""
    s = settings.devices
    if s.broker_dynsec_file is not None or s.broker_admin_url is not None:
        return await _sync_dynsec(db, settings, issued, file_only, others_may_wait)
    where = f"{s.broker_password_file}, {s.broker_acl_file}"
    try:
        result = await sync_broker(db, s.broker_password_file, s.broker_acl_file, pid_file=s.broker_pid_file)
    except BrokerAuthError as exc:
        return False, f"broker NOT updated: {exc}; fix it, then run `cityops device sync-broker`"
    if result.reloaded_pid is None:
        return False, (f"broker files written ({where}) but BROKER NOT RELOADED: the running broker still has the "
                       "old accounts until it is sent SIGHUP; set CITYOPS_DEVICES__BROKER_PID_FILE (or use dynamic "
                       "security) so that changes reach it")
    return True, f"broker files written ({where}); broker reloaded (pid {result.reloaded_pid})"


async def _sync_dynsec(db: Database, settings: Settings, issued: Sequence[tuple[str, str, bool]],
                       file_only: bool, others_may_wait: bool) -> tuple[bool, str]:
    s = settings.devices
    admin = s.broker_admin_url.get_secret_value() if s.broker_admin_url is not None else None
    try:
        result = await apply_dynsec(db, admin_url=admin, config_file=s.broker_dynsec_file,
                                    ingest_consumers=s.ingest_consumers, share_group=settings.ingest.share_group,
                                    secrets=issued_secrets(issued, s.ingest_consumers), contact=not file_only)
    except BrokerAuthError as exc:
        return False, (f"BROKER NOT UPDATED: {exc}. The registry changed but the running broker did not: "
                       "fix it, then run `cityops device sync-broker` (a new secret must be rotated again)")
    written = f"{result.written} written; " if result.written else ""
    if result.commands is None:
        if file_only and result.written:
            return True, f"{result.written} written: {result.accounts} accounts, read when the broker starts"
        return False, (f"{written}BROKER NOT UPDATED at run time: CITYOPS_DEVICES__BROKER_ADMIN_URL is unset "
                       "(the file applies when the broker next starts)")
    if result.no_secret:
        return others_may_wait, (f"{written}broker updated ({result.commands} changes, read back) but NOT for "
                                 f"{', '.join(result.no_secret)}: not on the broker and their secrets are not "
                                 "known here; `cityops device rotate` them")
    return True, f"{written}broker updated ({result.commands} changes) and read back: {result.accounts} accounts"
