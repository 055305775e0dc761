"""`cityops release keygen|build|publish|rollout|status|pause|resume|cancel|run`.

    cityops release keygen --out ~/cityops-keys          once: the fleet's key pair (private: 0600)
    cityops release build 1.4.0 --key ~/cityops-keys/release-signing.key [--no-deps]
    cityops release publish dist/cityops-agent-1.4.0.tar.gz
    cityops release rollout 1.4.0 --key KEY --kind frog --percent 50 --stages 5,25,100
    cityops release rollout --advance                    one tick now (`release run` ticks by itself)
    cityops release status | pause | resume | cancel
    cityops release run                                  the service: reports in, ticks every N s
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cityops.periodic import stop_event_on_signals
from cityops.services import database_for
from cityops.settings import Settings, redact_url
from devices.releases import service, store
from devices.releases.build import WheelOptions, build_release
from devices.releases.cohort import Cohort
from devices.releases.errors import ReleaseRejected, RolloutError, SigningKeyError
from devices.releases.signing import keygen, load_private_key, read_public_key
from devices.releases.staging import DEFAULT_STAGES, Policy, parse_stages


def register(commands: argparse._SubParsersAction[Any]) -> None:
    release = commands.add_parser("release", help="agent releases: build, sign, publish, roll out in stages",
                                  description="Signed agent releases and staged rollouts to the fleet "
                                              "(docs/releases.md).")
    actions = release.add_subparsers(dest="release_command", metavar="ACTION", required=True)

    def action(name: str, handler: Any, text: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=text, description=text + ".")
        sub.set_defaults(handler=handler)
        return sub

    key = action("keygen", run_keygen, "make the fleet's Ed25519 key pair (never overwrites one)")
    key.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write the two files")

    build = action("build", run_build, "package and sign the agent as a release tarball")
    build.add_argument("version", help="the release version, e.g. 1.4.0")
    build.add_argument("--key", type=Path, required=True, metavar="FILE", help="the private key (release-signing.key)")
    build.add_argument("--out", type=Path, default=Path("dist"), metavar="DIR", help="output folder (default dist)")
    build.add_argument("--source", type=Path, default=None, metavar="DIR",
                       help="the checkout to package (default: this installation's)")
    build.add_argument("--no-deps", action="store_true",
                       help="no dependency wheels: the devices' environment provides them")
    build.add_argument("--find-links", type=Path, default=None, metavar="DIR", help="take wheels from this folder")
    build.add_argument("--no-index", action="store_true", help="offline: only --find-links")
    build.add_argument("--platform", default=None, metavar="TAG",
                       help="wheels for the devices' platform, e.g. manylinux2014_aarch64")
    build.add_argument("--python-version", default=None, metavar="X.Y", help="with --platform (default 3.11)")

    publish = action("publish", run_publish, "check a release's signature and make it downloadable")
    publish.add_argument("archive", type=Path)
    publish.add_argument("--signature", type=Path, default=None, metavar="FILE", help="default: ARCHIVE.sig")
    publish.add_argument("--public-key", default=None, metavar="KEY|FILE",
                         help="the fleet's public key (default CITYOPS_RELEASES__PUBLIC_KEY)")

    rollout = action("rollout", run_rollout, "start a staged rollout, or advance the open one now (--advance)")
    rollout.add_argument("version", nargs="?", help="the release to roll out")
    rollout.add_argument("--advance", action="store_true", help="evaluate the open rollout now (one tick)")
    rollout.add_argument("--key", type=Path, default=None, metavar="FILE",
                         help="the private key (release-signing.key): it signs the rollout's offer")
    rollout.add_argument("--valid-days", type=float, default=14.0,
                         help="the offer expires after this many days (default 14); devices refuse it then")
    rollout.add_argument("--min-version", default=None, metavar="V",
                         help="a deliberate downgrade: devices take this release even over a newer one, if it is "
                              "at least V (default: only devices running an older version take it)")
    rollout.add_argument("--percent", type=float, default=100.0, help="of the matching devices (default 100)")
    rollout.add_argument("--kind", action="append", default=[], choices=("frog", "road", "bin"),
                         help="only this kind (repeatable)")
    rollout.add_argument("--area", default=None, help="only frog boxes in this area (household area name)")
    rollout.add_argument("--area-wkt", default=None, metavar="POLYGON", help="only devices inside this lon/lat polygon")
    rollout.add_argument("--devices", default=None, metavar="ID,ID", help="only these devices")
    rollout.add_argument("--stages", default=",".join(f"{s:g}" for s in DEFAULT_STAGES),
                         help="percentages of the cohort per stage (default 5,25,100)")
    rollout.add_argument("--max-failure-rate", type=float, default=0.1,
                         help="pause when more than this fraction fails (default 0.1)")
    rollout.add_argument("--min-healthy", type=int, default=3,
                         help="healthy reports a stage needs before the next (default 3)")

    status = action("status", run_status, "releases, devices per version, rollouts, failures")
    status.add_argument("--json", action="store_true")
    for name, text in (("pause", "pause the open rollout (no more devices are offered the release)"),
                       ("resume", "resume the paused rollout"),
                       ("cancel", "cancel the open rollout (devices already offered it keep the offer)")):
        sub = action(name, run_state, text)
        sub.add_argument("--reason", default=None)
    run = action("run", run_service, "the release service: store device reports, tick rollouts")
    run.add_argument("--every", type=float, default=None, metavar="S",
                     help="seconds between ticks (default CITYOPS_RELEASES__TICK_EVERY_S)")


async def run_keygen(args: argparse.Namespace, settings: Settings) -> int:
    pair = keygen(args.out)
    print(f"private key: {pair.private_path} (mode 0600; keep it off the servers, back it up)")
    print(f"public key:  {pair.public_path}")
    print("put this in every device's agent config, [update] public_key, and in "
          "CITYOPS_RELEASES__PUBLIC_KEY:")
    print(pair.public_key)
    return 0


async def run_build(args: argparse.Namespace, settings: Settings) -> int:
    wheels = None if args.no_deps else WheelOptions(args.find_links, args.no_index, args.platform,
                                                       args.python_version)
    built = build_release(args.version, args.out, load_private_key(args.key), source=args.source, wheels=wheels)
    print(f"built {built.archive} ({built.size / 1e3:.0f} kB, {len(built.manifest.files)} files"
          f"{', with wheels' if built.manifest.wheels else ', no wheels'})")
    print(f"sha256    {built.sha256}")
    print(f"signature {built.signature_path}")
    print(f"requires  {', '.join(built.manifest.requirements)}")
    return 0


async def run_publish(args: argparse.Namespace, settings: Settings) -> int:
    public = args.public_key or settings.releases.public_key
    if public is None:
        raise SigningKeyError("no public key to check the release with",
                              hint="give --public-key or set CITYOPS_RELEASES__PUBLIC_KEY")
    signature_path = args.signature or args.archive.with_name(args.archive.name + ".sig")
    try:
        signature = signature_path.read_text().strip()
    except OSError as exc:
        raise ReleaseRejected(f"cannot read the signature {signature_path}: {exc.strerror}",
                              hint="an unsigned release is never published") from None
    async with database_for(settings) as db:
        release = await store.publish_release(db, args.archive, signature, read_public_key(public),
                                              settings.releases.store_dir)
    print(f"published {release.version}: {release.path} ({release.size_bytes / 1e3:.0f} kB)")
    print(f"devices download it from {settings.releases.download_base_url.rstrip('/')}"
          f"{service.download_path(release.version)} (their [update] base_url in front)")
    return 0


async def run_rollout(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        if not args.advance:
            if args.version is None:
                raise RolloutError("give the release VERSION to roll out, or --advance")
            if args.key is None:
                raise SigningKeyError("a rollout's offer is signed: give --key release-signing.key")
            devices = tuple(d.strip() for d in (args.devices or "").split(",") if d.strip())
            cohort = Cohort(args.percent, tuple(args.kind), args.area, args.area_wkt, devices)
            policy = Policy(parse_stages(args.stages), args.max_failure_rate, args.min_healthy)
            expires_at = datetime.now(UTC) + timedelta(days=args.valid_days)
            rollout = await store.create_rollout(db, args.version, cohort, policy, key=load_private_key(args.key),
                                                 expires_at=expires_at, min_version=args.min_version)
            print(f"rollout {rollout.rollout_id}: {rollout.version} to {cohort.describe()}, stages "
                  f"{', '.join(f'{s:g} %' for s in policy.stages)}; the signed offer expires "
                  f"{rollout.expires_at:%Y-%m-%d %H:%M} UTC")
        async with service.publisher(settings.resolved_mqtt_url()) as publish:
            result = await service.tick(db, publish)
    if result.rollout_id is None:
        print("no open rollout")
        return 0
    print(f"rollout {result.rollout_id}: offered to {len(result.offered)} more device(s); state {result.state}")
    if result.decision is not None:
        print(result.decision.reason)
    return 0


async def run_status(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        state = await store.status(db)
    if args.json:
        print(json.dumps(state, indent=1, default=str))
        return 0
    print("releases:")
    for r in state["releases"] or [{"version": "(none)", "size_bytes": 0, "sha256": "", "published_at": ""}]:
        print(f"  {r['version']:<16} {r['size_bytes'] / 1e3:>7.0f} kB  {r['sha256'][:12]}  {r['published_at'][:19]}")
    print("devices by version: " + (", ".join(f"{v} {n}" for v, n in state["versions"].items()) or "none"))
    print("rollouts:")
    for r in state["rollouts"] or []:
        print(f"  {r['rollout_id']:>3} {r['version']:<12} {r['state']:<9} stage {r['stage']}/{len(r['stages'])} "
              f"({r['stage_percent']:g} %) of {r['cohort']}: {r['targeted']} offered, {r['healthy']} healthy, "
              f"{r['failed']} failed")
        if r["reason"]:
            print(f"      {r['reason']}")
    if not state["rollouts"]:
        print("  none")
    if state["failures"]:
        print("failures:")
        for f in state["failures"]:
            print(f"  {f['device_id']:<20} {f['version']:<12} {f['step']:<11} {f['reason'] or ''}")
    return 0


async def run_state(args: argparse.Namespace, settings: Settings) -> int:
    command = args.release_command
    async with database_for(settings) as db:
        rollout = await store.open_rollout(db)
        if rollout is None:
            raise RolloutError("no open rollout")
        reason = args.reason or f"{command}d by the operator"
        if command == "pause":
            rollout = await store.set_state(db, rollout.rollout_id, "paused", reason, allowed_from=("active",))
        elif command == "resume":
            rollout = await store.set_state(db, rollout.rollout_id, "active", reason, allowed_from=("paused",))
        else:
            rollout = await store.set_state(db, rollout.rollout_id, "cancelled", reason,
                                            allowed_from=("active", "paused"))
    print(f"rollout {rollout.rollout_id} ({rollout.version}) is {rollout.state}: {reason}")
    return 0


async def run_service(args: argparse.Namespace, settings: Settings) -> int:
    every = args.every or settings.releases.tick_every_s
    url = settings.resolved_mqtt_url()
    print(f"release service: reports from {redact_url(url)}, a rollout tick every {every:g} s")
    stop = stop_event_on_signals()  # SIGTERM: the tick in hand finishes, then the service ends
    async with database_for(settings) as db:
        await service.run(db, url, every, settings.releases.mqtt_client_id, stop=stop)
    return 0
