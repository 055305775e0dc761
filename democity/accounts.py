"""The demo's broker accounts: every device and service its own, as in production.

With Mosquitto and its dynamic security plugin on the machine, the demo's broker is the
production one (devices/dynsec.py): each of the town's devices connects as itself, bound
to its own client id and topics; ingest, the API and the other services each under their
own account; an admin account for the control API, so that the admin pages' add / rotate
/ retire reach the running broker. Each start issues new secrets for the town's devices
and the services (the registry keeps only hashes) and writes them to one file, readable
by this user only, which the simulated fleet reads (`--secrets`). Without the plugin (or
with amqtt) the broker is anonymous, and the demo says so.

Two accounts exist only in the demo, for its LoRaWAN devices (democity/chirpstack.py): the
simulated ChirpStack (`demo.chirpstack`, client id demo-chirpstack) may publish on
`application/#` and nothing else, as ChirpStack's own Mosquitto lets ChirpStack; the
integration (`demo.lorawan`, the client id `cityops lorawan run` uses for demo-chirpstack)
may subscribe to the ChirpStack event topics, receive `application/#` and publish
`application/+/device/+/command/down` (downlinks). No device may do either. They are added to
the plugin's file before the broker starts; the registry does not know them, so a change of
the broker's accounts made from the admin pages while the demo runs removes them again (the
demo's LoRaWAN devices then fall silent until the demo restarts).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cityops.embedded.broker import EmbeddedBroker, mosquitto_user
from cityops.embedded.process import make_traversable
from cityops.storage import Database
from democity.town import INTEGRATION_CLIENT_ID, LORAWAN_APPLICATION, NETWORK_SERVER_CLIENT_ID
from devices.broker_auth import apply_dynsec, write_replacing
from devices.broker_config import DYNSEC_PLUGIN
from devices.dynsec import ADMIN, Acl, Client, Role, ingest_client_id, ingest_username, service_clients
from devices.registry import SERVICE_ACCOUNTS, rotate_secrets, rotate_service_account
from devices.secrets import hash_secret
from lorawan.events import topic_filters

ACCOUNTS_FILE = "broker-accounts.json"
PLUGIN_FILE = "dynamic-security.json"
NETWORK_SERVER_USER = "demo.chirpstack"     # the simulated ChirpStack (democity/chirpstack.py)
INTEGRATION_USER = "demo.lorawan"           # `cityops lorawan run` for the demo's network server


def dynsec_available() -> bool:
    return Path(DYNSEC_PLUGIN).exists() and shutil.which("mosquitto") is not None


@dataclass(frozen=True)
class TownAccounts:
    """Who connects to the demo's broker, with which secret (never logged, never printed)."""

    port: int
    share_group: str
    consumers: int
    admin_secret: str
    services: dict[str, str]       # service account -> secret
    devices: dict[str, str]        # device id -> secret
    folder: Path                   # the accounts file and the plugin's file
    lorawan: dict[str, str] = field(default_factory=dict)   # the demo-only LoRaWAN accounts: username -> secret

    def _url(self, username: str, secret: str) -> str:
        return f"mqtt://{username}:{secret}@127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return self._url(ADMIN, self.admin_secret)

    @property
    def api_url(self) -> str:
        [(username, _)] = service_clients("api", self.consumers)
        return self._url(username, self.services["api"])

    def ingest_url(self, n: int) -> str:
        return self._url(ingest_username(n), self.services["ingest"])

    @staticmethod
    def ingest_client_id(n: int) -> str:
        return ingest_client_id(n)

    @property
    def network_server_url(self) -> str:
        return self._url(NETWORK_SERVER_USER, self.lorawan[NETWORK_SERVER_USER])

    @property
    def integration_url(self) -> str:
        return self._url(INTEGRATION_USER, self.lorawan[INTEGRATION_USER])

    @property
    def accounts_file(self) -> Path:
        return self.folder / ACCOUNTS_FILE

    @property
    def plugin_file(self) -> Path:
        return self.folder / PLUGIN_FILE

    def broker_config(self) -> str:
        """The Mosquitto lines that load the plugin with the registry's accounts."""
        return f"plugin {DYNSEC_PLUGIN}\nplugin_opt_config_file {self.plugin_file}\n"


async def issue_accounts(db: Database, device_ids: list[str], folder: Path, port: int, *, share_group: str,
                         consumers: int) -> TownAccounts:
    """New secrets for the town's devices and every service; the plugin's file written from
    the registry (every active device, not only the town's) and the secrets file beside it."""
    devices = {p.name: p.secret for p in await rotate_secrets(db, device_ids)}
    services = {name: (await rotate_service_account(db, name)).secret for name in SERVICE_ACCOUNTS}
    lorawan = {username: secrets.token_urlsafe(32) for username in (NETWORK_SERVER_USER, INTEGRATION_USER)}
    accounts = TownAccounts(port, share_group, consumers, secrets.token_urlsafe(32), services, devices,
                            await asyncio.to_thread(folder.resolve), lorawan)
    await asyncio.to_thread(_write_secrets, accounts)
    await apply_dynsec(db, admin_url=accounts.admin_url, config_file=accounts.plugin_file,
                       ingest_consumers=consumers, share_group=share_group, contact=False)
    await asyncio.to_thread(_add_lorawan_accounts, accounts)
    user = mosquitto_user()
    if user:  # under root Mosquitto runs as its own account, and writes the plugin's file back
        await asyncio.to_thread(_hand_to, user, accounts.plugin_file)
    return accounts


async def town_broker(db: Database, device_ids: list[str], data_dir: Path, port: int,
                      kind: Literal["auto", "mosquitto", "amqtt"], accounts_dir: Path, *, share_group: str,
                      consumers: int) -> tuple[EmbeddedBroker, TownAccounts | None]:
    """The demo's and the soak's broker: Mosquitto with dynamic security, every device and
    service under its own account, when the plugin is here; otherwise the broker `kind` gives,
    anonymous (no accounts: None)."""
    anonymous = EmbeddedBroker(data_dir, port, kind)
    if anonymous.kind != "mosquitto" or not dynsec_available():
        return anonymous, None
    accounts = await issue_accounts(db, device_ids, accounts_dir, port, share_group=share_group, consumers=consumers)
    return EmbeddedBroker(data_dir, port, "mosquitto", extra_config=accounts.broker_config()), accounts


def _write_secrets(accounts: TownAccounts) -> None:
    accounts.folder.mkdir(parents=True, exist_ok=True)
    write_replacing(accounts.accounts_file, json.dumps({
        "broker": f"mqtt://127.0.0.1:{accounts.port}", "admin_url": accounts.admin_url,
        "services": {username: accounts.services[name] for name in SERVICE_ACCOUNTS
                     for username, _ in service_clients(name, accounts.consumers)},
        "devices": accounts.devices}, indent=1) + "\n", mode=0o600)


def lorawan_accounts(secrets_by_user: dict[str, str], application: str, integration_client_id: str,
                     network_server_client_id: str) -> tuple[list[Client], list[Role]]:
    """The demo's simulated network server and its integration, as plugin clients and roles."""
    down = "application/+/device/+/command/down"
    roles = [
        Role(NETWORK_SERVER_USER, (Acl("publishClientSend", "application/#"),)),
        Role(INTEGRATION_USER, (*(Acl("subscribeLiteral", f) for f in topic_filters("chirpstack", application)),
                                Acl("publishClientReceive", "application/#"), Acl("publishClientSend", down))),
    ]
    clients = [Client(NETWORK_SERVER_USER, hash_secret(secrets_by_user[NETWORK_SERVER_USER]),
                      network_server_client_id, NETWORK_SERVER_USER),
               Client(INTEGRATION_USER, hash_secret(secrets_by_user[INTEGRATION_USER]), integration_client_id,
                      INTEGRATION_USER)]
    return clients, roles


def _add_lorawan_accounts(accounts: TownAccounts) -> None:
    clients, roles = lorawan_accounts(accounts.lorawan, LORAWAN_APPLICATION, INTEGRATION_CLIENT_ID,
                                      NETWORK_SERVER_CLIENT_ID)
    config = json.loads(accounts.plugin_file.read_text())
    config["clients"] += [c.as_json() for c in clients]
    config["roles"] += [r.as_json() for r in roles]
    write_replacing(accounts.plugin_file, json.dumps(config, indent=1) + "\n", mode=0o600)


def _hand_to(user: str, path: Path) -> None:
    make_traversable(path.parent)
    shutil.chown(path, user)


def read_device_secrets(path: Path) -> dict[str, str]:
    """The fleet's side: device id -> secret from the accounts file."""
    data = json.loads(path.read_text())
    devices: dict[str, str] = data["devices"]
    return devices

