"""`verbatim export create|list|status|download|verify` and `verbatim verify-export`: exports through the
compliance API (a bearer token, as every API caller), and the offline verification of a package.

The API is `--api` or `VERBATIM_API_URL` (e.g. `https://<app>.azurewebsites.net/api/v1`); the token is
`VERBATIM_TOKEN`, an Entra ID access token for the API with the Compliance.Officer role (e.g. from
`az account get-access-token --resource <application ID URI>`). Verification needs neither: it runs the verifier a
package ships (`verbatim.exports.standalone_export_verifier`) on a local file or folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import httpx
from tqdm import tqdm

from verbatim.exports import standalone_export_verifier
from verbatim.ledger.access import REASON_HEADER

TIMEOUT = 60.0
POLL_SECONDS = 2.0
LINK_PART = 8 * 1024 * 1024  # bytes per Range request straight from storage


class CommandError(Exception):
    """A request the API refused, or settings missing: printed, exit status 1."""


def register(subparsers: Any) -> None:
    export = subparsers.add_parser("export", help="export recordings as a package anyone can verify offline")
    export.add_argument("--api", help="the compliance API's base URL (default: $VERBATIM_API_URL)")
    commands = export.add_subparsers(dest="export_command", required=True, metavar="ACTION")

    create = commands.add_parser("create", help="request an export (Compliance.Officer); prints its id")
    chosen = create.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--recording", action="append", metavar="ID", help="a recording to export (repeatable)")
    chosen.add_argument("--hold", metavar="HOLD_ID", help="everything under this legal hold")
    chosen.add_argument(
        "--search", action="append", metavar="NAME=VALUE", help="a search filter of GET /recordings (repeatable)"
    )
    create.add_argument("--reason", required=True, help="why (recorded in the ledger with the export)")
    create.add_argument("--title", help="a name for the recipient, e.g. the matter")
    create.add_argument("--no-evidence", action="store_true", help="leave out the lossless evidence")
    create.add_argument("--no-access-copies", action="store_true", help="leave out the Opus access copies")
    create.add_argument("--no-call-records", action="store_true", help="leave out call records and verdicts")
    create.add_argument(
        "--chats", action="store_true", help="add sealed chats (a hold's, or the recordings' meeting and people chats)"
    )
    create.add_argument("--wait", action="store_true", help="follow its progress until it has finished")
    create.set_defaults(handler=handled(_create))

    commands.add_parser("list", help="the newest exports").set_defaults(handler=handled(_list))

    status = commands.add_parser("status", help="an export's progress and result")
    status.add_argument("export_id")
    status.add_argument("--wait", action="store_true", help="follow its progress until it has finished")
    status.set_defaults(handler=handled(_status))

    download = commands.add_parser(
        "download",
        help="download a finished export's package in Range parts (a multi-part package: every part, into a "
        "folder), then verify it",
    )
    download.add_argument("export_id")
    download.add_argument("--reason", required=True, help="why (recorded in the ledger with the download)")
    download.add_argument(
        "--output",
        "-o",
        required=True,
        type=Path,
        help="the file to write (a folder for a multi-part package); what is there already is resumed",
    )
    download.add_argument(
        "--via",
        choices=("auto", "link", "api"),
        default="auto",
        help="link: straight from storage through a short-lived download link (Azure); api: through the API in "
        "parts; auto (default): a link where the deployment issues them, else the API",
    )
    download.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    download.add_argument("--no-verify", action="store_true", help="do not run the package's verifier on the download")
    download.set_defaults(handler=handled(_download))

    verify = commands.add_parser("verify", help="verify a package offline (the verifier it ships)")
    _verify_arguments(verify)

    top = subparsers.add_parser("verify-export", help="verify an export package offline (same as export verify)")
    _verify_arguments(top)


def _verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("package", help="the export ZIP, or the folder it was unpacked into")
    parser.add_argument("--key", action="append", metavar="VKEY", help="a trusted ledger key (repeatable)")
    parser.add_argument("--key-file", action="append", metavar="FILE", help="trusted ledger keys, one per line")
    parser.add_argument("--fingerprint", action="append", metavar="SHA256", help="trust only this package key")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress; print only problems")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=_verify)


# --- the API ---------------------------------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> httpx.Client:
    base = (getattr(args, "api", None) or os.environ.get("VERBATIM_API_URL") or "").rstrip("/")
    token = os.environ.get("VERBATIM_TOKEN")
    if not base:
        raise CommandError("no API: pass --api URL or set VERBATIM_API_URL (…/api/v1)")
    if not token:
        raise CommandError("no token: set VERBATIM_TOKEN to an access token for the compliance API")
    return httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=TIMEOUT)


def _checked(response: httpx.Response, *expected: int) -> httpx.Response:
    if response.status_code in expected:
        return response
    try:
        problem = response.json()
        detail = f"{problem.get('title')}: {problem.get('detail')}"
    except ValueError:
        detail = response.text[:500]
    raise CommandError(f"{response.request.method} {response.request.url.path}: {response.status_code} {detail}")


def _create(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "options": {
            "evidence": not args.no_evidence,
            "accessCopies": not args.no_access_copies,
            "callRecords": not args.no_call_records,
            "chats": args.chats,
        }
    }
    if args.title:
        body["title"] = args.title
    if args.recording:
        body["recordingIds"] = args.recording
    elif args.hold:
        body["holdId"] = args.hold
    else:
        pairs = [item.split("=", 1) for item in args.search]
        if any(len(pair) != 2 for pair in pairs):
            raise CommandError("--search takes NAME=VALUE")
        body["search"] = dict(pairs)
    with _client(args) as client:
        view = _checked(client.post("/exports", json=body, headers={REASON_HEADER: args.reason}), 202).json()
        export_id = view["export"]["id"]
        print(export_id)
        if args.wait:
            return _follow(client, export_id)
    return 0


def _list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        items = _checked(client.get("/exports"), 200).json()["items"]
    for item in items:
        result = item.get("result") or {}
        size = f"{result['packageBytes'] / 1e6:.1f} MB" if result else ""
        print(f"{item['id']}  {item['status']:<9}  {item['createdAt'][:19]}  {size:>10}  {item.get('title') or ''}")
    return 0


def _status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.wait:
            return _follow(client, args.export_id)
        print(json.dumps(_checked(client.get(f"/exports/{args.export_id}"), 200).json(), indent=2))
    return 0


def _follow(client: httpx.Client, export_id: str) -> int:
    """A progress bar over the recordings of each stage, until the export has finished; 0 if it completed."""
    bar: Any = None
    stage = ""
    while True:
        view = _checked(client.get(f"/exports/{export_id}"), 200).json()
        record = view["export"]
        progress = record["progress"]
        if progress["stage"] != stage:
            if bar is not None:
                bar.close()
            stage = progress["stage"]
            bar = tqdm(total=progress["total"] or None, desc=stage, unit="rec", file=sys.stderr)
        bar.n = progress["done"]
        bar.refresh()
        if record["status"] in ("completed", "failed", "deleted", "expired"):
            bar.close()
            break
        time.sleep(POLL_SECONDS)
    if record["status"] != "completed":
        print(f"export {export_id} is {record['status']}: {record.get('error') or ''}", file=sys.stderr)
        return 1
    result = record["result"]
    print(f"completed: {result['recordings']} recordings, {result['packageBytes']} bytes; download: {view['download']}")
    return 0


def fetch_through_link(
    storage: httpx.Client,
    url: str,
    out: BinaryIO,
    offset: int,
    size: int,
    progress: Callable[[int], object],
    renew: Callable[[], str],
) -> None:
    """Bytes `offset` .. `size` - 1 of the package from storage through the link `url`, in Range parts of
    `LINK_PART`, appended to `out`. A link lives minutes: when storage refuses it (403: expired), `renew` asks for
    another one and the download goes on where it was; a refusal straight after a renewal is an error."""
    renewed = False
    while offset < size:
        end = min(size, offset + LINK_PART) - 1
        part = storage.get(url, headers={"range": f"bytes={offset}-{end}"})
        if part.status_code == 403 and not renewed:
            url, renewed = renew(), True
            continue
        if part.status_code != 206:
            raise CommandError(f"storage answered {part.status_code} for bytes {offset}-{end}: {part.text[:300]}")
        expected = f"bytes {offset}-{end}/{size}"
        if part.headers.get("content-range") != expected or len(part.content) != end - offset + 1:
            raise CommandError(f"storage sent {part.headers.get('content-range')!r}, not {expected!r}")
        out.write(part.content)
        offset += len(part.content)
        progress(len(part.content))
        renewed = False


def _fetch(
    client: httpx.Client,
    args: argparse.Namespace,
    path: str,
    size: int,
    target: Path,
    bar: Any,
) -> None:
    """The object at `path` (`/exports/{id}/package` or `.../parts/{name}`) of `size` bytes into `target`,
    resumed from what `target` already holds: through a download link where the deployment issues them (`path` +
    `/link`, or the package's `/link`), else through the API in Range parts."""
    offset = target.stat().st_size if target.exists() else 0
    if offset > size:
        raise CommandError(f"{target} is larger than {target.name} of the package ({size} bytes): remove it first")
    bar.update(offset)
    if offset == size:
        return
    headers = {REASON_HEADER: args.reason}
    link = None
    link_path = f"/exports/{args.export_id}/link" if path.endswith("/package") else f"{path}/link"
    if args.via != "api":
        link = _link_at(client, link_path, args.reason, required=args.via == "link")
        if link is None and not args.quiet and not getattr(args, "_told", False):
            print("no download links in this deployment: downloading through the API", file=sys.stderr)
            args._told = True
    with target.open("ab") as out:
        if link is not None:

            def renew() -> str:
                return _link_at(client, link_path, args.reason, required=True) or ""

            with httpx.Client(timeout=TIMEOUT) as storage:  # no bearer token: the link is the grant
                fetch_through_link(storage, link, out, offset, size, bar.update, renew)
            return
        while offset < size:
            part = client.get(path, headers={**headers, "range": f"bytes={offset}-"})
            _checked(part, 206)
            out.write(part.content)
            offset += len(part.content)
            bar.update(len(part.content))


def _link_at(client: httpx.Client, path: str, reason: str, *, required: bool) -> str | None:
    """A download link (`POST /exports/{id}/link` or `.../parts/{name}/link`); None where the deployment issues
    none (409) unless `required`."""
    answer = client.post(path, headers={REASON_HEADER: reason})
    if answer.status_code == 409 and not required:
        return None
    url: str = _checked(answer, 200).json()["url"]
    return url


def _download(args: argparse.Namespace) -> int:
    """The package into a file; a multi-part package into a folder (each object resumed on its own). Then the
    download is verified by the verifier the package ships (`--no-verify`: not)."""
    target: Path = args.output
    with _client(args) as client:
        record = _checked(client.get(f"/exports/{args.export_id}"), 200).json()["export"]
        if record["status"] != "completed":
            raise CommandError(f"export {args.export_id} is {record['status']}: nothing to download yet")
        result = record["result"]
        multi = bool(result.get("parts"))
        if multi:
            if target.exists() and not target.is_dir():
                raise CommandError(f"export {args.export_id} is a multi-part package: {target} must be a folder")
            target.mkdir(parents=True, exist_ok=True)
            listed = _checked(client.get(f"/exports/{args.export_id}/parts"), 200).json()["items"]
            objects = [
                (f"/exports/{args.export_id}/parts/{item['name']}", int(item["bytes"]), item["name"]) for item in listed
            ]
        else:
            objects = [(f"/exports/{args.export_id}/package", int(result["packageBytes"]), "")]
        total = sum(size for _, size, _ in objects)
        with tqdm(total=total, unit="B", unit_scale=True, desc="download", disable=args.quiet, file=sys.stderr) as bar:
            for path, size, name in objects:
                _fetch(client, args, path, size, target / name if name else target, bar)
    if not args.quiet:
        what = f"{len(objects) - 2} parts, the index and its signature" if multi else "the package"
        print(f"{target}: {total} bytes ({what})", file=sys.stderr)
    if args.no_verify:
        if not args.quiet:
            print(f"verify it with `verbatim verify-export {target}`", file=sys.stderr)
        return 0
    status = standalone_export_verifier.main([str(target), "--quiet"])
    if status == 0 and not args.quiet:
        print(
            f"{target}: verified (the package's own keys: compare their fingerprints, see README.txt)", file=sys.stderr
        )
    return status


# --- offline ---------------------------------------------------------------------------------------------------


def _verify(args: argparse.Namespace) -> int:
    argv = [args.package]
    for key in args.key or []:
        argv += ["--key", key]
    for path in args.key_file or []:
        argv += ["--key-file", path]
    for pin in args.fingerprint or []:
        argv += ["--fingerprint", pin]
    argv += ["--quiet"] if args.quiet else []
    argv += ["--json"] if args.json else []
    return standalone_export_verifier.main(argv)


def handled(handler: Any) -> Any:
    """Run `handler`, printing a CommandError instead of a traceback (exit 1)."""

    def run(args: argparse.Namespace) -> int:
        try:
            status: int = handler(args)
        except CommandError as error:
            print(f"verbatim export: {error}", file=sys.stderr)
            return 1
        except httpx.HTTPError as error:
            print(f"verbatim export: the API did not answer: {error}", file=sys.stderr)
            return 1
        return status

    return run
